"""`page[number]` / `page[size]` and the four-field `meta` of Telnyx's flat pagination."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Query
from sqlalchemy import ColumnElement, Table, func, select
from sqlalchemy.engine import RowMapping

from signalpost.kit.db import UnitOfWork
from signalpost.kit.errors import bad_parameter


@dataclass(frozen=True)
class Page:
    number: int
    size: int

    @property
    def offset(self) -> int:
        return (self.number - 1) * self.size

    def envelope(self, data: Sequence[Any], total: int) -> dict[str, Any]:
        return {
            "data": list(data),
            "meta": {
                "page_number": self.number,
                "page_size": self.size,
                "total_pages": math.ceil(total / self.size) if total else 0,
                "total_results": total,
            },
        }


def _as_int(name: str, raw: str | None, default: int, lo: int, hi: int | None) -> int:
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise bad_parameter(name, f"{name} must be an integer.") from None
    if value < lo or (hi is not None and value > hi):
        bound = f"between {lo} and {hi}" if hi is not None else f"at least {lo}"
        raise bad_parameter(name, f"{name} must be {bound}.")
    return value


async def page_params(
    number: Annotated[str | None, Query(alias="page[number]")] = None,
    size: Annotated[str | None, Query(alias="page[size]")] = None,
) -> Page:
    """FastAPI dependency: the requested page, validated (size 1–250, default 20)."""
    return parse_page(number, size)


def parse_page(number: str | None, size: str | None) -> Page:
    """The page asked for by raw `page[number]` / `page[size]` values."""
    return Page(
        number=_as_int("page[number]", number, 1, 1, None),
        size=_as_int("page[size]", size, 20, 1, 250),
    )


async def fetch_page(
    uow: UnitOfWork,
    table: Table,
    where: Sequence[ColumnElement[bool]],
    order_by: Sequence[Any],
    offset: int,
    limit: int,
) -> tuple[list[RowMapping], int]:
    """One page of `table`'s rows matching `where`, and the total count."""
    total_q = select(func.count()).select_from(table).where(*where)
    total = int((await uow.conn.execute(total_q)).scalar_one())
    if offset >= total:
        return [], total
    q = select(table).where(*where).order_by(*order_by).offset(offset).limit(limit)
    return list((await uow.conn.execute(q)).mappings().all()), total
