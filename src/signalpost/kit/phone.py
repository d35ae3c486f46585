"""Phone-number helpers on top of `phonenumbers`: E.164 checks, number type and country."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

import phonenumbers
from phonenumbers import PhoneNumberType, carrier, number_type

E164 = re.compile(r"^\+[1-9]\d{6,14}$")
SHORT_CODE = re.compile(r"^\d{3,8}$")
ALPHANUMERIC = re.compile(r"^(?=.*[A-Za-z])[A-Za-z0-9 ]{1,11}$")

# The number types whose carrier is looked up (as phonenumbers.carrier.name_for_number does).
_CARRIER_TYPES = {
    PhoneNumberType.MOBILE,
    PhoneNumberType.FIXED_LINE_OR_MOBILE,
    PhoneNumberType.PAGER,
}

TOLL_FREE_NANP = {"800", "833", "844", "855", "866", "877", "888"}


@dataclass(frozen=True)
class NumberInfo:
    e164: str
    country_code: str  # ISO 3166 alpha-2
    toll_free: bool
    mobile: bool
    carrier: str
    line_type: str  # Telnyx line_type: Wireless, Wireline, VoIP, ""


def is_e164(value: str) -> bool:
    return bool(E164.match(value))


@functools.lru_cache(maxsize=65536)
def parse(value: str) -> NumberInfo | None:
    """Parse a `+E.164` number; None if it is not a valid, possible number (memoized: pure)."""
    if not is_e164(value):
        return None
    try:
        num = phonenumbers.parse(value, None)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(num):
        return None
    # Finding the region of a NANP number matches it against each region's patterns until one
    # fits: where none does, the number has no type either, so that search is not repeated.
    region = phonenumbers.region_code_for_number(num)
    ntype = number_type(num) if region else PhoneNumberType.UNKNOWN
    region = region or phonenumbers.region_code_for_country_code(num.country_code or 0)
    if not region or region in ("ZZ", "001"):
        return None
    national = str(num.national_number)
    toll_free = ntype == PhoneNumberType.TOLL_FREE or (
        num.country_code == 1 and national[:3] in TOLL_FREE_NANP
    )
    mobile = ntype == PhoneNumberType.MOBILE and not toll_free
    if ntype == PhoneNumberType.MOBILE:
        line_type = "Wireless"
    elif ntype == PhoneNumberType.FIXED_LINE:
        line_type = "Wireline"
    elif ntype == PhoneNumberType.VOIP:
        line_type = "VoIP"
    elif ntype == PhoneNumberType.FIXED_LINE_OR_MOBILE:
        line_type = "Wireless"
    else:
        line_type = ""
    return NumberInfo(
        e164=value,
        country_code=region,
        toll_free=toll_free,
        mobile=mobile,
        # name_for_number would find the type again; carriers are known for mobile-like numbers.
        carrier=(carrier.name_for_valid_number(num, "en") if ntype in _CARRIER_TYPES else "") or "",
        line_type=line_type,
    )


def country_of(value: str) -> str | None:
    info = parse(value)
    return info.country_code if info else None
