"""Phone numbers to E.164, the form Retreaver stores and compares.

A publisher's ``caller_number`` arrives in many shapes: ``+18558485518``, ``18558485518``,
``(855) 848-5518``, or ``" 18558485518"`` when an unencoded ``+`` in a query string was
decoded as a space. We parse with Google's libphonenumber (``phonenumbers``) with the US
as the default region, so ten-digit NANP numbers get ``+1`` and every other country needs
its ``+`` (or ``00``) prefix, then require the number to be *valid*, not merely possible,
so that nothing Retreaver would refuse is forwarded.

Nearly every caller is a NANP number, and for those ``parse`` + ``is_valid_number`` +
``format_number`` cost ~25 µs per new caller, mostly in work whose answer is known in
advance. So a NANP number (``+1`` or national, ten digits, first digit 2-9) skips
``parse`` and ``format_number``, whose result for that shape is fixed (country code 1, the
ten digits, no extension, no leading zero: see :func:`_nanp_national_number`), and is
validated by :class:`_Nanp`, which answers exactly what ``is_valid_number`` answers
without its repeated steps (~3 µs in all). Everything else takes libphonenumber's own path.
``tests/ping/test_phone_fast.py`` holds the libphonenumber-only function this replaced and
checks the two agree, value and refusal, over every area code.

Library versions: reads libphonenumber's ``PhoneMetadata`` patterns (phonenumberslite).
``tests/ping/test_phone_fast.py`` checks the fast path against libphonenumber itself for
8.13.0 (floor) to 9.0.42 (lock and newest, ``.ci/latest`` 2026-12-04); pyproject.toml
allows ``>=8.13,<10``.
"""

from __future__ import annotations

import re

import phonenumbers
from phonenumbers.phonemetadata import PhoneMetadata, PhoneNumberDesc

DEFAULT_REGION = "US"
MAX_INPUT_CHARS = 40
_ALLOWED = frozenset("0123456789+-() ./")
# Deletes everything _ALLOWED lets through but the digits.
_NOT_DIGITS = str.maketrans("", "", "+-() ./")
# A NANP area code's first digit: with 0 or 1 libphonenumber strips a national prefix or
# reads a leading zero, so those are left to it.
_NANP_FIRST_DIGITS = frozenset("23456789")
_NANP_NSN_LENGTH = 10


class InvalidPhoneNumber(ValueError):
    """The input is not a valid phone number; the message says why, without echoing it."""


def to_e164(raw: str) -> str:
    """Normalise ``raw`` to E.164 or raise :class:`InvalidPhoneNumber`."""
    text = raw.strip()
    if not text:
        raise InvalidPhoneNumber("is empty")
    if len(raw) > MAX_INPUT_CHARS:
        raise InvalidPhoneNumber(f"is longer than {MAX_INPUT_CHARS} characters")
    # Only ASCII digits and common separators: libphonenumber would happily read
    # Arabic-Indic or full-width digits, letters (vanity numbers) and extensions, none of
    # which a bid should carry.
    if not _ALLOWED.issuperset(text):
        raise InvalidPhoneNumber("may hold only digits, '+', spaces, '-', '.', '/' and parentheses")
    if text.startswith("00"):
        text = "+" + text[2:]
    elif not text.startswith("+"):
        digits = _digits(text)
        if len(digits) == 11 and digits[0] == "1":
            text = "+" + digits
    if "+" in text[1:]:
        raise InvalidPhoneNumber("has a '+' in the wrong place")
    national = _nanp_national_number(text)
    if national is None:
        return _parsed_e164(text)
    if _NANP.is_valid(national):
        return "+1" + national
    raise InvalidPhoneNumber("is not a valid phone number")


def _nanp_national_number(text: str) -> str | None:
    """The ten NANP digits of ``text`` when ``parse(text, "US")`` gives exactly them.

    ``text`` holds only ASCII digits and ``-() ./`` after at most one leading ``+``. In
    that alphabet libphonenumber finds no extension (each of its extension forms needs a
    letter, ``#``, ``~``, ``,`` or ``;``), no second number (that needs an ``x``) and no
    RFC 3966 context, and reads every digit once punctuation is stripped. After ``+1`` it
    takes ``1`` as the country code; without a ``+`` the US default applies, since ten
    digits that start 2-9 begin neither with the US IDD (``011``) nor with ``1``. Ten
    digits starting 2-9 then hold no national prefix (``1``) to strip and no Italian
    leading zero, so the parsed number is country code 1 with these digits as its national
    number, and its E.164 form is ``"+1" + digits``. (``+ 1 ...`` is the same number too,
    but rare enough to leave to libphonenumber: other ``+`` numbers cost nothing here.)
    """
    if text.startswith("+1"):
        digits = _digits(text[2:])
    elif text[0] != "+":
        digits = _digits(text)
    else:
        return None
    if len(digits) == _NANP_NSN_LENGTH and digits[0] in _NANP_FIRST_DIGITS:
        return digits
    return None


def _digits(text: str) -> str:
    """``text``'s digits, given that it holds only characters from ``_ALLOWED``."""
    return text if text.isdigit() else text.translate(_NOT_DIGITS)


def _parsed_e164(text: str) -> str:
    try:
        number = phonenumbers.parse(text, DEFAULT_REGION)
    except phonenumbers.NumberParseException:
        raise InvalidPhoneNumber("is not a valid phone number") from None
    if not phonenumbers.is_valid_number(number):
        raise InvalidPhoneNumber("is not a valid phone number")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


class _NanpRegion:
    """One NANP region's validity test for a ten-digit national number.

    ``_number_type_helper(nsn, metadata) != UNKNOWN`` in libphonenumber is: the general
    description matches, and so does one of premium rate, toll free, shared cost, VoIP,
    personal, pager, UAN, voicemail, fixed line, or mobile (mobile only when its pattern
    differs from fixed line's). A description matches when the length is one of its
    possible lengths (or it lists none) and its pattern matches the whole number
    (``_match``: ``match`` then ``fullmatch``, which is ``fullmatch``). The length is
    always ten here, so descriptions that cannot take ten digits are dropped when the
    region is built, and fixed line is tried first: the same "or", the common answer
    first, each pattern compiled once.
    """

    __slots__ = ("general", "leading_digits", "right_country", "types")

    def __init__(self, metadata: PhoneMetadata) -> None:
        self.leading_digits = (
            None if metadata.leading_digits is None else re.compile(metadata.leading_digits)
        )
        # is_valid_number_for_region refuses a region whose calling code is not the number's.
        self.right_country = metadata.country_code == 1
        self.general = _pattern_for_ten_digits(metadata.general_desc)
        descs = [metadata.fixed_line]
        if not metadata.same_mobile_and_fixed_line_pattern:
            descs.append(metadata.mobile)
        descs += [
            metadata.premium_rate,
            metadata.toll_free,
            metadata.shared_cost,
            metadata.voip,
            metadata.personal_number,
            metadata.pager,
            metadata.uan,
            metadata.voicemail,
        ]
        self.types = tuple(p for p in map(_pattern_for_ten_digits, descs) if p is not None)

    def has_type(self, nsn: str) -> bool:
        if self.general is None or self.general.fullmatch(nsn) is None:
            return False
        return any(pattern.fullmatch(nsn) is not None for pattern in self.types)


class _Nanp:
    """``is_valid_number`` for country code 1, libphonenumber's steps without repeats.

    ``is_valid_number`` first finds the region (``_region_code_for_number_from_list``: in
    the calling code's region order, the first whose leading digits match, or, for a
    region without leading digits, whose number type is known), then checks the number
    against that region, computing the type a second time. A region found by its type is
    therefore valid at once; one found by its leading digits still needs its type.
    """

    def __init__(self) -> None:
        self.regions: tuple[_NanpRegion, ...] = tuple(
            _NanpRegion(metadata)
            for region in phonenumbers.COUNTRY_CODE_TO_REGION_CODE[1]
            if (metadata := PhoneMetadata.metadata_for_region(region.upper(), None)) is not None
        )

    def is_valid(self, nsn: str) -> bool:
        for region in self.regions:
            if region.leading_digits is None:
                if region.has_type(nsn):
                    return region.right_country
            elif region.leading_digits.match(nsn):
                return region.right_country and region.has_type(nsn)
        return False


def _pattern_for_ten_digits(desc: PhoneNumberDesc | None) -> re.Pattern[str] | None:
    """``desc``'s pattern if a ten-digit number can match it (libphonenumber's rules)."""
    if desc is None or not desc.national_number_pattern:
        return None
    if desc.possible_length and _NANP_NSN_LENGTH not in desc.possible_length:
        return None
    return re.compile(desc.national_number_pattern)


_NANP = _Nanp()
