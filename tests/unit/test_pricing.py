"""`price()` and `PriceTable`: defaults, lookup fallback, Decimal arithmetic, overrides."""

from __future__ import annotations

from decimal import Decimal

import pytest
from pydantic import ValidationError

from signalpost.messages.pricing import PriceTable, Rate, price

DEFAULT = PriceTable.model_validate({})


def usd(amount: str) -> dict[str, str]:
    return {"amount": amount, "currency": "USD"}


@pytest.mark.parametrize(
    ("sender_kind", "country", "message_type", "parts", "cost", "rate", "fee"),
    [
        # US long code SMS: 0.0040 + 0.0030 per part
        ("long_code", "US", "SMS", 1, "0.0070", "0.0040", "0.0030"),
        ("long_code", "US", "SMS", 2, "0.0140", "0.0080", "0.0060"),
        ("long_code", "US", "SMS", 10, "0.0700", "0.0400", "0.0300"),
        # MMS counts one part whatever `parts` says
        ("long_code", "US", "MMS", 1, "0.0250", "0.0150", "0.0100"),
        ("long_code", "US", "MMS", 4, "0.0250", "0.0150", "0.0100"),
        ("toll_free", "US", "SMS", 1, "0.0065", "0.0040", "0.0025"),
        ("toll_free", "US", "SMS", 3, "0.0195", "0.0120", "0.0075"),
        ("short_code", "US", "SMS", 1, "0.0080", "0.0050", "0.0030"),
        ("long_code", "CA", "SMS", 2, "0.0080", "0.0080", "0.0000"),
        # every other country: the "*" entry, no carrier fee
        ("long_code", "GB", "SMS", 1, "0.0600", "0.0600", "0.0000"),
        ("long_code", "DE", "SMS", 3, "0.1800", "0.1800", "0.0000"),
        ("alphanumeric", "FR", "SMS", 2, "0.1200", "0.1200", "0.0000"),
        ("short_code", "MX", "SMS", 1, "0.0600", "0.0600", "0.0000"),
        # the country code is case-insensitive; None is priced as "*"
        ("long_code", "us", "SMS", 1, "0.0070", "0.0040", "0.0030"),
        ("long_code", None, "SMS", 1, "0.0600", "0.0600", "0.0000"),
        ("whatsapp", "US", "WHATSAPP", 3, "0.0050", "0.0050", "0.0000"),
        # no price anywhere for the combination: free, not an error
        ("long_code", "GB", "MMS", 1, "0.0000", "0.0000", "0.0000"),
        ("alphanumeric", "US", "MMS", 1, "0.0000", "0.0000", "0.0000"),
        ("carrier_pigeon", "US", "SMS", 1, "0.0000", "0.0000", "0.0000"),
    ],
)
def test_default_prices(
    sender_kind: str,
    country: str | None,
    message_type: str,
    parts: int,
    cost: str,
    rate: str,
    fee: str,
) -> None:
    got_cost, breakdown = price(
        DEFAULT, sender_kind=sender_kind, country=country, message_type=message_type, parts=parts
    )
    assert got_cost == usd(cost)
    assert breakdown == {"rate": usd(rate), "carrier_fee": usd(fee)}


def test_amounts_are_exact_decimal_strings() -> None:
    # 0.1 + 0.2 in binary floating point is 0.30000000000000004
    table = PriceTable.model_validate(
        {"rates": {"long_code": {"US": {"sms": {"rate": "0.1", "carrier_fee": "0.2"}}}}}
    )
    cost, breakdown = price(
        table, sender_kind="long_code", country="US", message_type="SMS", parts=3
    )
    assert cost == usd("0.9000")
    assert breakdown == {"rate": usd("0.3000"), "carrier_fee": usd("0.6000")}
    for money in (cost, *breakdown.values()):
        assert isinstance(money["amount"], str)
        assert "e" not in money["amount"].lower()


def test_amounts_keep_finer_precision() -> None:
    # the Telnyx documentation shows amounts like "0.00305"
    table = PriceTable.model_validate(
        {"rates": {"long_code": {"US": {"sms": {"rate": "0.00205", "carrier_fee": "0.00305"}}}}}
    )
    cost, breakdown = price(
        table, sender_kind="long_code", country="US", message_type="SMS", parts=1
    )
    assert cost == usd("0.00510")
    assert breakdown == {"rate": usd("0.00205"), "carrier_fee": usd("0.00305")}
    tiny = PriceTable.model_validate(
        {"rates": {"long_code": {"GB": {"sms": {"rate": "0.00000001"}}}}}
    )
    cost, _ = price(tiny, sender_kind="long_code", country="GB", message_type="SMS", parts=1)
    assert cost == usd("0.00000001")


def test_breakdown_sums_to_cost() -> None:
    for kind in ("long_code", "toll_free", "short_code"):
        for parts in range(1, 11):
            cost, breakdown = price(
                DEFAULT, sender_kind=kind, country="US", message_type="SMS", parts=parts
            )
            total = Decimal(breakdown["rate"]["amount"]) + Decimal(
                breakdown["carrier_fee"]["amount"]
            )
            assert Decimal(cost["amount"]) == total


def test_overrides_merge_over_the_defaults() -> None:
    table = PriceTable.model_validate(
        {
            "rates": {
                "long_code": {
                    "GB": {"sms": {"rate": "0.0400"}},
                    "US": {"sms": {"rate": "0.0035", "carrier_fee": "0.0030"}},
                },
            }
        }
    )
    assert table.lookup("long_code", "GB", "SMS") == Rate(rate=Decimal("0.0400"))
    assert table.lookup("long_code", "US", "SMS") == Rate(
        rate=Decimal("0.0035"), carrier_fee=Decimal("0.0030")
    )
    # untouched defaults survive: US MMS on the same kind, other kinds, the "*" fallback
    assert table.lookup("long_code", "US", "MMS") == DEFAULT.lookup("long_code", "US", "MMS")
    assert table.lookup("toll_free", "US", "SMS") == DEFAULT.lookup("toll_free", "US", "SMS")
    assert table.lookup("long_code", "JP", "SMS") == Rate(rate=Decimal("0.0600"))


def test_override_of_one_field_keeps_the_other() -> None:
    table = PriceTable.model_validate(
        {"rates": {"toll_free": {"US": {"sms": {"carrier_fee": "0.0030"}}}}}
    )
    assert table.lookup("toll_free", "US", "SMS") == Rate(
        rate=Decimal("0.0040"), carrier_fee=Decimal("0.0030")
    )


def test_override_with_null_removes_a_default() -> None:
    table = PriceTable.model_validate({"rates": {"long_code": {"CA": None}}})
    assert table.lookup("long_code", "CA", "SMS") == Rate(rate=Decimal("0.0600"))  # now "*"
    assert DEFAULT.lookup("long_code", "CA", "SMS") == Rate(rate=Decimal("0.0040"))


def test_currency() -> None:
    table = PriceTable.model_validate({"currency": "EUR"})
    cost, breakdown = price(
        table, sender_kind="long_code", country="US", message_type="SMS", parts=1
    )
    assert cost == {"amount": "0.0070", "currency": "EUR"}
    assert breakdown["rate"]["currency"] == breakdown["carrier_fee"]["currency"] == "EUR"


@pytest.mark.parametrize(
    "overrides",
    [
        {"currency": "usd"},
        {"rates": {"long_code": {"US": {"sms": {"rate": "-0.01"}}}}},
        {"rates": {"long_code": {"US": {"sms": {"rate": "cheap"}}}}},
        {"rates": {"long_code": {"GB": {"sms": {"carrier_fee": "0.001"}}}}},  # rate missing
        {"rates": {"long_code": {"US": {"fax": {"rate": "0.01"}}}}},
        {"rates": {"pigeon": {"*": {"sms": {"rate": "0.01"}}}}},
        {"surcharge": "0.01"},
    ],
)
def test_invalid_tables_are_rejected(overrides: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        PriceTable.model_validate(overrides)


def test_invalid_arguments() -> None:
    with pytest.raises(ValueError, match="message type"):
        price(DEFAULT, sender_kind="long_code", country="US", message_type="RCS", parts=1)
    with pytest.raises(ValueError, match="at least one part"):
        price(DEFAULT, sender_kind="long_code", country="US", message_type="SMS", parts=0)


def test_repeated_prices_are_separate_objects() -> None:
    """Answers are remembered per argument set; a caller changing one answer changes no other."""
    first, first_breakdown = price(
        DEFAULT, sender_kind="long_code", country="US", message_type="SMS", parts=2
    )
    first["amount"] = "9.9999"
    first_breakdown["rate"]["amount"] = "9.9999"
    again, breakdown = price(
        DEFAULT, sender_kind="long_code", country="US", message_type="SMS", parts=2
    )
    assert again == {"amount": "0.0140", "currency": "USD"}
    assert breakdown["rate"] == {"amount": "0.0080", "currency": "USD"}
    assert price(DEFAULT, sender_kind="long_code", country="US", message_type="SMS", parts=3)[
        0
    ] == {
        "amount": "0.0210",
        "currency": "USD",
    }
