"""E.164 normalisation: the shapes publishers send, and what is refused."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.ping.phone import InvalidPhoneNumber, to_e164


@pytest.mark.parametrize(
    ("raw", "e164"),
    [
        ("+18558485518", "+18558485518"),
        (" 18558485518", "+18558485518"),  # '+' decoded as a space from a query string
        ("8558485518", "+18558485518"),
        ("(855) 848-5518", "+18558485518"),
        ("855.848.5518", "+18558485518"),
        ("1 855 848 5518", "+18558485518"),
        ("+442071838750", "+442071838750"),
        ("00442071838750", "+442071838750"),
        ("+61 2 9374 4000", "+61293744000"),
    ],
)
def test_valid_numbers(raw: str, e164: str) -> None:
    assert to_e164(raw) == e164


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "   ",
        "123",
        "+1855848551",
        "1-800-FLOWERS",
        "8558485518 ext 12",
        "+1855848+5518",
        "٨٥٥٨٤٨٥٥١٨",
        "８５５８４８５５１８",
        "+1855\x008485518",
        "1" * 10_000,
        "+0000000000",
    ],
)
def test_invalid_numbers(raw: str) -> None:
    with pytest.raises(InvalidPhoneNumber):
        to_e164(raw)


REASONS = {
    "is empty",
    "is longer than 40 characters",
    "may hold only digits, '+', spaces, '-', '.', '/' and parentheses",
    "has a '+' in the wrong place",
    "is not a valid phone number",
}


@given(st.text(max_size=60))
def test_any_text_is_a_number_or_a_clean_refusal(raw: str) -> None:
    try:
        out = to_e164(raw)
    except InvalidPhoneNumber as exc:
        # Refusals are fixed sentences: the input is never echoed (it may be a caller's number).
        assert str(exc) in REASONS
        return
    assert out.startswith("+")
    assert out[1:].isdigit()
    assert 8 <= len(out) <= 16
