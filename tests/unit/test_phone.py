"""kit.phone: what a destination number is (country, type, carrier) from `phonenumbers`' data."""

from __future__ import annotations

import pytest

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
