"""Phone-number helpers on top of `phonenumbers`: E.164 checks, number type and country."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

import phonenumbers
from phonenumbers import PhoneMetadata, PhoneNumber, PhoneNumberType, carrier, number_type

try:  # the building blocks of `phonenumbers.parse`, for the shortcut in `_e164_number`
    from phonenumbers.phonenumberutil import (
        _MAX_LENGTH_FOR_NSN,
        _MIN_LENGTH_FOR_NSN,
        ValidationResult,
        _maybe_strip_national_prefix_carrier_code,
        _number_type_helper,
        _set_italian_leading_zeros_for_phone_number,
        _test_number_length,
    )

    _SHORTCUT = True
except ImportError:  # pragma: no cover - a phonenumbers release that reorganised them
    _SHORTCUT = False

E164 = re.compile(r"^\+[1-9][0-9]{6,14}\Z")
SHORT_CODE = re.compile(r"^[0-9]{3,8}\Z")
ALPHANUMERIC = re.compile(r"^(?=.*[A-Za-z])[A-Za-z0-9 ]{1,11}\Z")

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
    num = _e164_number(value)
    if num is None or not phonenumbers.is_possible_number(num):
        return None
    region, ntype = _region_and_type(num)
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


# `phonenumbers.parse` accepts numbers in any format: stripping punctuation, extensions and
# international dialling prefixes costs it four times what an E.164 string needs, which shows on
# every message accepted for a new destination. The shortcut takes the same steps for an E.164
# string: the country code, the national prefix where one applies, the length limits and the
# leading zeros (a test compares the two over many numbers).


def _e164_number(value: str) -> PhoneNumber | None:
    """`phonenumbers.parse(value)` for a string matching `E164`; None where it raises."""
    if not _SHORTCUT:
        try:
            return phonenumbers.parse(value, None)
        except phonenumbers.NumberParseException:
            return None
    digits = value[1:]
    for size in (1, 2, 3):
        country_code = int(digits[:size])
        if country_code in phonenumbers.COUNTRY_CODE_TO_REGION_CODE:
            break
    else:
        return None
    national = digits[size:]
    metadata = PhoneMetadata.metadata_for_region_or_calling_code(
        country_code, phonenumbers.region_code_for_country_code(country_code)
    )
    if metadata is not None:
        _, stripped, _ = _maybe_strip_national_prefix_carrier_code(national, metadata)
        if _test_number_length(stripped, metadata) not in (
            ValidationResult.TOO_SHORT,
            ValidationResult.IS_POSSIBLE_LOCAL_ONLY,
            ValidationResult.INVALID_LENGTH,
        ):
            national = stripped
    if not _MIN_LENGTH_FOR_NSN <= len(national) <= _MAX_LENGTH_FOR_NSN:
        return None
    number = PhoneNumber(country_code=country_code)
    _set_italian_leading_zeros_for_phone_number(national, number)
    number.national_number = int(national)
    return number


def _region_and_type(number: PhoneNumber) -> tuple[str | None, int]:
    """`phonenumbers.region_code_for_number` and `number_type` at once: where a calling code has
    several regions (NANP), the region is the first whose patterns give the number a type, and
    `number_type` would find it again and match the number once more."""
    if not _SHORTCUT:
        region = phonenumbers.region_code_for_number(number)
        return region, int(number_type(number)) if region else PhoneNumberType.UNKNOWN
    country_code = number.country_code or 0
    regions = phonenumbers.COUNTRY_CODE_TO_REGION_CODE.get(country_code)
    if not regions:
        return None, PhoneNumberType.UNKNOWN
    national = phonenumbers.national_significant_number(number)
    if len(regions) == 1:
        metadata = PhoneMetadata.metadata_for_region_or_calling_code(country_code, regions[0])
        if metadata is None:
            return regions[0], PhoneNumberType.UNKNOWN
        return regions[0], int(_number_type_helper(national, metadata))
    for region in regions:
        metadata = PhoneMetadata.metadata_for_region(region, None)
        if metadata is None:
            continue
        if metadata.leading_digits is not None:
            if re.match(metadata.leading_digits, national):
                return region, int(_number_type_helper(national, metadata))
        elif (ntype := _number_type_helper(national, metadata)) != PhoneNumberType.UNKNOWN:
            return region, int(ntype)
    return None, PhoneNumberType.UNKNOWN
