"""Wire shapes of `GET /messaging_optouts` (contract §7.1; PY `types/messaging_optout_list_*.py`).

An opt-out is shown as the traffic it blocks, as the SDK types describe it: `from` is the sending
address (our number the handset wrote to), `to` the receiving address (the handset that opted out),
`keyword` the word it used. `redaction_enabled=true` masks `to`, the handset.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

from fastapi import Query

from signalpost.kit.clock import iso, parse_datetime
from signalpost.kit.errors import bad_parameter
from signalpost.optouts.repository import OptoutQuery

REDACTED_DIGITS = 4


def redact(number: str) -> str:
    """`+13125550123` → `+1312555****`: the last digits hidden, the country and area kept."""
    if len(number) <= REDACTED_DIGITS + 1:
        return "*" * len(number)
    return number[:-REDACTED_DIGITS] + "*" * REDACTED_DIGITS


def optout_view(row: Mapping[Any, Any], *, redacted: bool = False) -> dict[str, Any]:
    handset: str = row["from_number"]
    return {
        "from": row["to_number"],
        "to": redact(handset) if redacted else handset,
        "keyword": row["keyword"],
        "messaging_profile_id": row["messaging_profile_id"],
        "created_at": iso(row["created_at"]),
    }


def _datetime(name: str, raw: str | None) -> Any:
    if raw is None or raw.strip() == "":
        return None
    try:
        return parse_datetime(raw)
    except ValueError:
        raise bad_parameter(name, f"{name} must be an ISO 8601 date-time.") from None


def _address(raw: str | None) -> str | None:
    """An address from the query; a `+` sent unencoded arrives as a space and is put back."""
    if raw is None or raw.strip() == "":
        return None
    if raw.startswith(" ") and raw.strip().isdigit():
        return "+" + raw.strip()
    return raw.strip()


def optout_filters(
    messaging_profile_id: Annotated[
        str | None, Query(alias="filter[messaging_profile_id]", description="Messaging profile id.")
    ] = None,
    from_: Annotated[
        str | None,
        Query(alias="filter[from]", description="The sending address (the number written to)."),
    ] = None,
    created_gte: Annotated[
        str | None, Query(alias="created_at[gte]", description="Created at or after (ISO 8601).")
    ] = None,
    created_lte: Annotated[
        str | None, Query(alias="created_at[lte]", description="Created at or before (ISO 8601).")
    ] = None,
) -> OptoutQuery:
    """FastAPI dependency: the list filters, validated."""
    return OptoutQuery(
        messaging_profile_id=messaging_profile_id or None,
        number=_address(from_),
        created_gte=_datetime("created_at[gte]", created_gte),
        created_lte=_datetime("created_at[lte]", created_lte),
    )


def redaction_param(
    redaction_enabled: Annotated[
        str | None,
        Query(description="`true` masks the receiving address (the handset that opted out)."),
    ] = None,
) -> bool:
    if redaction_enabled is None or redaction_enabled == "":
        return False
    value = redaction_enabled.strip().lower()
    if value not in ("true", "false"):
        raise bad_parameter("redaction_enabled", "redaction_enabled must be 'true' or 'false'.")
    return value == "true"
