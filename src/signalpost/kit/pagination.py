"""`page[number]` / `page[size]` and the four-field `meta` of Telnyx's flat pagination."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Query
from sqlalchemy import ColumnElement, Select, Table, func, select
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


# The largest page number served: pages past the last are empty, and this bound keeps every
# offset (number × size) well inside the 64-bit integers both databases count in.
MAX_PAGE_NUMBER = 2**31 - 1
MAX_PAGE_SIZE = 250
_INTEGER = re.compile(r"[+-]?[0-9]{1,19}")


def int_param(name: str, raw: str | None, default: int, lo: int, hi: int) -> int:
    """A query parameter holding an integer in [lo, hi]; 400 (10015, `source.parameter`) if not."""
    if raw is None or raw == "":
        return default
    value = raw.strip()
    if not _INTEGER.fullmatch(value):
        raise bad_parameter(name, f"{name} must be an integer between {lo} and {hi}.")
    number = int(value)
    if not lo <= number <= hi:
        raise bad_parameter(name, f"{name} must be between {lo} and {hi}.")
    return number


PageNumber = Annotated[
    int | None,
    Query(
        alias="page[number]",
        ge=1,
        le=MAX_PAGE_NUMBER,
        description="The page to return, from 1; pages past the last are empty.",
    ),
]
PageSize = Annotated[
    int | None,
    Query(alias="page[size]", ge=1, le=MAX_PAGE_SIZE, description="Items per page (default 20)."),
]


async def page_params(number: PageNumber = None, size: PageSize = None) -> Page:
    """FastAPI dependency: the requested page, validated (400, code 10015, `source.parameter`)."""
    return Page(number=number or 1, size=size or 20)


async def fetch_page(
    uow: UnitOfWork,
    table: Table,
    where: Sequence[ColumnElement[bool]],
    order_by: Sequence[Any],
    offset: int,
    limit: int,
    *,
    rows: Select[Any] | None = None,
) -> tuple[list[RowMapping], int]:
    """One page of `table`'s rows matching `where`, and the total count. `rows`: the query the
    page's rows come from instead of all of `table`'s columns (`table` joined to another for
    more of them, say); `where` applies to it too."""
    total_q = select(func.count()).select_from(table).where(*where)
    total = int((await uow.conn.execute(total_q)).scalar_one())
    if offset >= total:
        return [], total
    q = (
        (select(table) if rows is None else rows)
        .where(*where)
        .order_by(*order_by)
        .offset(offset)
        .limit(limit)
    )
    return list((await uow.conn.execute(q)).mappings().all()), total
