"""The NANP fast lane of ``to_e164`` gives exactly what libphonenumber alone gave.

``_reference`` is ``to_e164`` as it was before the fast lane (libphonenumber for every
input; the code of commit 675635b, less its comments): the accepted set, the E.164 text
and each refusal's message must not move, for any area code, exchange or shape.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable, Iterator

import phonenumbers
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from gateway.ping.phone import (
    DEFAULT_REGION,
    MAX_INPUT_CHARS,
    InvalidPhoneNumber,
    _nanp_national_number,
    to_e164,
)

_ALLOWED = frozenset("0123456789+-() ./")


def _reference(raw: str) -> str:
    text = raw.strip()
    if not text:
        raise InvalidPhoneNumber("is empty")
    if len(raw) > MAX_INPUT_CHARS:
        raise InvalidPhoneNumber(f"is longer than {MAX_INPUT_CHARS} characters")
    if not _ALLOWED.issuperset(text):
        raise InvalidPhoneNumber("may hold only digits, '+', spaces, '-', '.', '/' and parentheses")
    if text.startswith("00"):
        text = "+" + text[2:]
    elif not text.startswith("+") and len(_digits(text)) == 11 and _digits(text)[0] == "1":
        text = "+" + _digits(text)
    if "+" in text[1:]:
        raise InvalidPhoneNumber("has a '+' in the wrong place")
    try:
        number = phonenumbers.parse(text, DEFAULT_REGION)
    except phonenumbers.NumberParseException:
        raise InvalidPhoneNumber("is not a valid phone number") from None
    if not phonenumbers.is_valid_number(number):
        raise InvalidPhoneNumber("is not a valid phone number")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def _digits(text: str) -> str:
    return "".join(c for c in text if c.isdigit())


def _outcome(convert: Callable[[str], str], raw: str) -> tuple[bool, str]:
    """(accepted, E.164) or (refused, the refusal's message)."""
    try:
        return True, convert(raw)
    except InvalidPhoneNumber as exc:
        return False, str(exc)


def _assert_same(inputs: Iterator[str]) -> Counter[bool]:
    """Every input converts alike; how many were accepted and refused."""
    seen: Counter[bool] = Counter()
    for raw in inputs:
        expected = _outcome(_reference, raw)
        assert _outcome(to_e164, raw) == expected, raw
        seen[expected[0]] += 1
    return seen


# How publishers write one NANP number (a = area code, b = exchange, c = line), plus the
# near misses around each: every one must behave as libphonenumber alone behaved.
SHAPES = (
    "+1{a}{b}{c}",
    "1{a}{b}{c}",
    "{a}{b}{c}",
    " 1{a}{b}{c}",
    "({a}) {b}-{c}",
    "{a}.{b}.{c}",
    "{a}/{b}/{c}",
    "{a}-{b}-{c}",
    "1 {a} {b} {c}",
    "1-{a}-{b}-{c}",
    "1 ({a}) {b}-{c}",
    "+1 ({a}) {b}-{c}",
    "+1-{a}-{b}-{c}",
    "+ 1 {a} {b} {c}",
    "+(1){a}{b}{c}",
    "001{a}{b}{c}",
    "00 1 {a} {b} {c}",
    "011{a}{b}{c}",
    "(({a}{b}{c}))",
    "-{a}{b}{c}-",
    "{a}{b}{c}.",
    "({a}{b}{c}",
    "+1{a}{b}{c}0",
    "+1{a}{b}{c}00",
    "+1{a}{b}",
    "1{a}{b}{c}0",
    "{a}{b}{c}0",
    "{a}{b}{c}00",
    "0{a}{b}{c}",
    "11{a}{b}{c}",
    "+11{a}{b}{c}",
    "+2{a}{b}{c}",
    "+{a}{b}{c}",
    "{a}{b}",
    "{b}{c}",
    "+1{a}+{b}{c}",
    "1+{a}{b}{c}",
)
SPECIAL_EXCHANGES = (0, 1, 99, 100, 199, 200, 211, 311, 411, 555, 611, 711, 811, 911, 958, 959, 976)


def _numbers(rng: random.Random, sampled: int, everywhere: bool) -> Iterator[tuple[str, str, str]]:
    """(area, exchange, line) for every area code 000-999: ``sampled`` random exchanges and
    every special one (``everywhere``) or one special one in turn."""
    for area in range(1000):
        turn = area % len(SPECIAL_EXCHANGES)
        special = SPECIAL_EXCHANGES if everywhere else SPECIAL_EXCHANGES[turn : turn + 1]
        for exchange in sorted({*special, *rng.sample(range(1000), sampled)}):
            yield f"{area:03d}", f"{exchange:03d}", f"{rng.randrange(10_000):04d}"


def test_every_area_code_in_e164_agrees() -> None:
    seen = _assert_same(f"+1{a}{b}{c}" for a, b, c in _numbers(random.Random(1), 60, True))
    # Both answers are common, so agreement is not the trivial kind.
    assert seen[True] > 20_000
    assert seen[False] > 20_000


def test_every_area_code_in_every_shape_agrees() -> None:
    # Four numbers per area code, each in a third of the shapes (turn by turn), so every
    # area code meets every shape.
    numbers = enumerate(_numbers(random.Random(2), 3, False))
    seen = _assert_same(
        shape.format(a=a, b=b, c=c) for i, (a, b, c) in numbers for shape in SHAPES[i % 3 :: 3]
    )
    assert seen[True] > 1_000
    assert seen[False] > 1_000


@pytest.mark.parametrize(
    "raw",
    [
        "+18558485518",
        "+12125550123",  # 555-01xx: fictional, and valid to libphonenumber
        "+12125551234",
        "+12124111234",
        "+19111234567",
        "+12119111234",
        "+18008485518",
        "+18338485518",
        "+19008485518",
        "+15008485518",
        "+14168485518",  # Canada
        "+16048485518",
        "+18768485518",  # Jamaica
        "+12688485518",  # Antigua
        "+17878485518",  # Puerto Rico
        "+18098485518",  # Dominican Republic
        "+18298485518",
        "+16718485518",  # Guam
        "+13408485518",  # US Virgin Islands
        "+10008485518",
        "+11558485518",
        "+1855848551",
        "+185584855180",
        "+1",
        "+",
        "1",
        "00",
        "001",
        "+10000000000",
        "+19999999999",
        "+11111111111",
        "+442071838750",
        "00442071838750",
        "+61 2 9374 4000",
        "+33 1 42 68 53 00",
        "+49 30 901820",
        "+52 55 5250 0000",
        "+7 495 123 4567",
        "+20 2 2345 6789",
        "+800 1234 5678",
        "+999 1234 5678",
        "++18558485518",
        "+-18558485518",
        "1 (855) 848-5518 ",
        "\t+18558485518\n",
        "\u3000+18558485518",
        "855 848 5518 x12",
        "8558485518#",
    ],
)
def test_edge_cases_agree(raw: str) -> None:
    assert _outcome(to_e164, raw) == _outcome(_reference, raw)


@settings(max_examples=1_000)
@given(st.text(alphabet="0123456789+-() ./", max_size=24))
@example("+1(855)848-5518")
def test_any_allowed_text_agrees(raw: str) -> None:
    assert _outcome(to_e164, raw) == _outcome(_reference, raw)


@settings(max_examples=300)
@given(
    st.from_regex(r"\A ?(\+|00)? ?1?[-. (]{0,2}[0-9]{3}[-. )/]{0,2}[0-9]{3}[-. /]{0,2}[0-9]{4}\Z")
)
def test_any_nanp_looking_text_agrees(raw: str) -> None:
    assert _outcome(to_e164, raw) == _outcome(_reference, raw)


@given(st.text(max_size=60))
def test_any_text_agrees(raw: str) -> None:
    assert _outcome(to_e164, raw) == _outcome(_reference, raw)


@pytest.mark.parametrize(
    ("text", "national"),
    [
        ("+18558485518", "8558485518"),
        ("+1 (855) 848-5518", "8558485518"),
        ("(855) 848-5518", "8558485518"),
        ("8558485518", "8558485518"),
        ("+11558485518", None),  # area code 155: libphonenumber's to judge
        ("+10558485518", None),
        ("0558485518", None),
        ("1558485518", None),
        ("+28558485518", None),
        ("+442071838750", None),
        ("+ 1 855 848 5518", None),  # the same number, but rare: libphonenumber reads it
        ("0018558485518", None),  # to_e164 turns "00" into "+" first
        ("+1855848551", None),
        ("855848551", None),
    ],
)
def test_the_fast_lane_takes_only_plain_nanp_numbers(text: str, national: str | None) -> None:
    assert _nanp_national_number(text) == national
