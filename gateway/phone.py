"""Phone numbers to E.164, the form Retreaver stores and compares.

A publisher's ``caller_number`` arrives in many shapes: ``+18558485518``, ``18558485518``,
``(855) 848-5518``, or ``" 18558485518"`` when an unencoded ``+`` in a query string was
decoded as a space. We parse with Google's libphonenumber (``phonenumbers``) with the US
as the default region, so ten-digit NANP numbers get ``+1`` and every other country needs
its ``+`` (or ``00``) prefix, then require the number to be *valid*, not merely possible,
so that nothing Retreaver would refuse is forwarded.
"""

from __future__ import annotations

import phonenumbers

DEFAULT_REGION = "US"
MAX_INPUT_CHARS = 40
_ALLOWED = frozenset("0123456789+-() ./")


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
