"""What a message costs: a configurable price table and `price()`.

Pure, no I/O. Prices are per part and per destination country, by sender kind and message type;
each price is a `rate` plus a `carrier_fee` (the pass-through fee US carriers charge on A2P
traffic). A message costs ``(rate + carrier_fee) × parts``; an MMS and a WhatsApp message count as
one part whatever their length. All arithmetic is `Decimal`, and amounts leave as strings with at
least four decimals (``"0.0140"``), as the Telnyx wire format wants.

Lookup: ``rates[sender_kind][country][message_type]``, falling back to the ``"*"`` country of that
sender kind. A combination with no price at all costs zero (the sandbox charges nobody; a gateway
operator lists every route it sells).

The table is configured with ``SIGNALPOST_PRICING`` / the ``pricing`` settings key, merged key by key
over the defaults, e.g. ``{"rates": {"long_code": {"GB": {"sms": {"rate": "0.0400"}}}}}`` adds a
British long-code SMS price and keeps every other default. ``null`` removes a default entry.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from decimal import Decimal
from typing import Any, Literal, cast

from pydantic import BaseModel, ConfigDict, Field, model_validator

SenderKind = Literal["long_code", "toll_free", "short_code", "alphanumeric", "whatsapp"]
MessageType = Literal["SMS", "MMS", "WHATSAPP"]

Money = dict[str, str]  # {"amount": "0.0070", "currency": "USD"}
CostBreakdown = dict[str, Money]  # {"rate": Money, "carrier_fee": Money}

_MIN_PLACES = Decimal("0.0001")


class Rate(BaseModel):
    """The price of one part: our rate plus the carrier's fee."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    rate: Decimal = Field(ge=0)
    carrier_fee: Decimal = Field(default=Decimal("0"), ge=0)


class Tariff(BaseModel):
    """Per-part prices to one destination country, by message type (None: no price)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    sms: Rate | None = None
    mms: Rate | None = None
    whatsapp: Rate | None = None

    def for_type(self, message_type: MessageType) -> Rate | None:
        match message_type:
            case "SMS":
                return self.sms
            case "MMS":
                return self.mms
            case "WHATSAPP":
                return self.whatsapp


def _rate(rate: str, fee: str = "0") -> dict[str, str]:
    return {"rate": rate, "carrier_fee": fee}


# Realistic list prices in USD. Countries are ISO 3166 alpha-2; "*" is every other country.
DEFAULT_RATES: dict[str, dict[str, dict[str, Any]]] = {
    "long_code": {
        "US": {"sms": _rate("0.0040", "0.0030"), "mms": _rate("0.0150", "0.0100")},
        "CA": {"sms": _rate("0.0040"), "mms": _rate("0.0150")},
        "*": {"sms": _rate("0.0600")},
    },
    "toll_free": {
        "US": {"sms": _rate("0.0040", "0.0025"), "mms": _rate("0.0150", "0.0100")},
        "CA": {"sms": _rate("0.0040"), "mms": _rate("0.0150")},
        "*": {"sms": _rate("0.0600")},
    },
    "short_code": {
        "US": {"sms": _rate("0.0050", "0.0030"), "mms": _rate("0.0150", "0.0100")},
        "*": {"sms": _rate("0.0600")},
    },
    "alphanumeric": {
        "*": {"sms": _rate("0.0600")},
    },
    "whatsapp": {
        "*": {"whatsapp": _rate("0.0050")},
    },
}


def _merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """`override` laid over `base`, recursing into mappings; a None value removes the key."""
    out = dict(base)
    for key, value in override.items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


class PriceTable(BaseModel):
    """Per-part prices by sender kind and destination country (see the module docstring).

    Validating a mapping merges it over the defaults, so a settings file names only what differs.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    currency: str = Field(default="USD", pattern=r"^[A-Z]{3}$")
    rates: dict[SenderKind, dict[str, Tariff]]

    @model_validator(mode="before")
    @classmethod
    def _over_defaults(cls, data: Any) -> Any:
        if isinstance(data, Mapping):
            return _merge({"rates": DEFAULT_RATES}, data)
        return data

    @functools.cached_property
    def amounts(self) -> dict[tuple[str, str | None, str, int], tuple[str, str, str]]:
        """The amounts `price` worked out, by its arguments (the table never changes)."""
        return {}

    def lookup(
        self, sender_kind: str, country: str | None, message_type: MessageType
    ) -> Rate | None:
        """The per-part price, falling back to the kind's "*" country; None when there is none."""
        by_country = self.rates.get(cast(SenderKind, sender_kind), {})
        for key in ((country or "").upper(), "*"):
            tariff = by_country.get(key)
            if tariff is not None and (rate := tariff.for_type(message_type)) is not None:
                return rate
        return None


def _amount(value: Decimal) -> str:
    exponent = value.as_tuple().exponent
    if isinstance(exponent, int) and exponent > -4:
        value = value.quantize(_MIN_PLACES)
    return format(value, "f")


def price(
    table: PriceTable,
    *,
    sender_kind: str,
    country: str | None,
    message_type: str,
    parts: int,
) -> tuple[Money, CostBreakdown]:
    """The `cost` and `cost_breakdown` of a message: ``(rate + carrier_fee) × parts``.

    `message_type` is ``SMS``, ``MMS`` or ``WHATSAPP``; MMS and WhatsApp count as one part.
    `country` is the destination's ISO alpha-2 code (None: unknown, priced as ``"*"``).
    Raises ValueError for an unknown message type or a part count below one.
    """
    key = (sender_kind, country, message_type, parts)
    amounts = table.amounts.get(key)
    if amounts is None:
        amounts = _amounts(table, sender_kind, country, message_type, parts)
        table.amounts[key] = amounts
    total, rate, fee = amounts
    currency = table.currency
    return {"amount": total, "currency": currency}, {
        "rate": {"amount": rate, "currency": currency},
        "carrier_fee": {"amount": fee, "currency": currency},
    }


def _amounts(
    table: PriceTable, sender_kind: str, country: str | None, message_type: str, parts: int
) -> tuple[str, str, str]:
    """The total, rate and carrier fee of `price`, as wire amounts."""
    if message_type not in ("SMS", "MMS", "WHATSAPP"):
        raise ValueError(f"Unknown message type {message_type!r}.")
    if parts < 1:
        raise ValueError(f"A message has at least one part, not {parts}.")
    kind: MessageType = message_type  # type: ignore[assignment]
    units = parts if kind == "SMS" else 1
    found = table.lookup(sender_kind, country, kind) or Rate(rate=Decimal("0"))
    rate = found.rate * units
    fee = found.carrier_fee * units
    return _amount(rate + fee), _amount(rate), _amount(fee)
