"""kit.phone: what a destination number is (country, type, carrier) from `phonenumbers`' data."""

from __future__ import annotations

import random

import phonenumbers
import pytest
from phonenumbers import PhoneNumberType

from signalpost.kit import phone


@pytest.mark.parametrize(
    ("number", "country", "mobile", "carrier", "line_type"),
    [
        ("+447400123456", "GB", True, "Three", "Wireless"),
        ("+4915112345678", "DE", True, "T-Mobile", "Wireless"),
        ("+33612345678", "FR", True, "SFR", "Wireless"),
        # NANP numbers are fixed line or mobile: no carrier data, shown as wireless.
        ("+14155550100", "US", False, "", "Wireless"),
        # Invalid but possible: the country comes from the calling code, the type is unknown.
        ("+447700900123", "GB", False, "", ""),
        ("+15555550100", "US", False, "", ""),
    ],
)
def test_number_info(number: str, country: str, mobile: bool, carrier: str, line_type: str) -> None:
    info = phone.parse(number)
    assert info is not None
    assert (info.country_code, info.mobile, info.carrier, info.line_type) == (
        country,
        mobile,
        carrier,
        line_type,
    )


def test_toll_free() -> None:
    info = phone.parse("+18005550100")
    assert info is not None and info.toll_free and not info.mobile and info.carrier == ""


@pytest.mark.parametrize("number", ["4155550100", "+1415", "+999123456789", "+1-415-555-0100"])
def test_not_numbers(number: str) -> None:
    assert phone.parse(number) is None


def _corpus() -> list[str]:
    """E.164-shaped strings across many calling codes, national prefixes and lengths."""
    rng = random.Random(20261128)
    starts = ["+1", "+1415", "+1800", "+1649", "+1876", "+44", "+4407", "+447", "+49", "+33"]
    starts += ["+39", "+3906", "+390", "+7", "+78", "+86", "+91", "+55", "+61", "+81", "+972"]
    starts += ["+20", "+234", "+27", "+2", "+3", "+5", "+6", "+8", "+9", "+800", "+882", "+979"]
    numbers = []
    for _ in range(20_000):
        digits = "".join(rng.choice("0123456789") for _ in range(rng.randint(3, 13)))
        candidate = rng.choice(starts) + digits
        if phone.is_e164(candidate):
            numbers.append(candidate)
    return numbers


def test_the_e164_shortcut_parses_as_phonenumbers_does() -> None:
    assert phone._SHORTCUT  # the installed phonenumbers has the building blocks it uses
    differ = []
    for number in _corpus():
        try:
            expected: phonenumbers.PhoneNumber | None = phonenumbers.parse(number, None)
        except phonenumbers.NumberParseException:
            expected = None
        got = phone._e164_number(number)
        if got != expected:
            differ.append((number, expected, got))
            continue
        if got is not None:
            region = phonenumbers.region_code_for_number(got)
            expected_type = phonenumbers.number_type(got) if region else PhoneNumberType.UNKNOWN
            if phone._region_and_type(got) != (region, expected_type):
                differ.append((number, "region and type", got))
    assert differ == []
