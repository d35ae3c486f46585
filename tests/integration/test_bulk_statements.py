"""`Conn.insert_many`, `Conn.update_many` and `Conn.rows_where_in` store and read exactly what
SQLAlchemy's own statements do: the driver path on SQLite applies the same bind and result
processors and constant defaults, and leaves to SQLAlchemy what it cannot do itself."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Integer,
    MetaData,
    String,
    Table,
    bindparam,
    insert,
    select,
    update,
)

from signalpost.kit.db import MAX_IN, Database, UnitOfWork, UTCDateTime

T = TypeVar("T")

meta = MetaData()
things = Table(
    "things",
    meta,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(20), nullable=False),
    Column("data", JSON, nullable=True),
    Column("at", UTCDateTime(), nullable=True),
    Column("flag", Boolean, nullable=False, default=True),
    Column("count", Integer, nullable=False, default=7),
    Column("note", String(20), nullable=True),
)
stamped = Table(
    "stamped",
    meta,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(20), nullable=False),
    Column("made", String(40), nullable=False, default=lambda: "made-by-callable"),
)

ROWS: list[dict[str, Any]] = [
    {"name": "a", "data": {"k": [1, "x"]}, "at": datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=UTC)},
    {"name": "b", "data": None, "at": None, "flag": False, "count": 1},
    {
        "name": "c",
        "data": [1, 2],
        "at": datetime(2026, 1, 2, 5, 4, 5, tzinfo=timezone(timedelta(hours=2))),
        "note": "n",
    },
]


Rows = list[dict[str, Any]]


def on_fresh_tables(url: str, write: Callable[[UnitOfWork], Awaitable[T]]) -> tuple[T, Rows, Rows]:
    """`write`'s result in a first transaction on new tables, then the rows of both tables."""

    async def go() -> tuple[T, Rows, Rows]:
        db = Database(url)
        try:
            engine = db.sync_engine
            assert engine is not None
            meta.create_all(engine)
            async with db.transaction() as uow:
                result = await write(uow)
            async with db.transaction() as uow:
                got = (await uow.conn.execute(select(things).order_by(things.c.id))).mappings()
                made = (await uow.conn.execute(select(stamped))).mappings()
                return result, [dict(r) for r in got], [dict(r) for r in made]
        finally:
            await db.dispose()

    return asyncio.run(go())


def stored(url: str, via_insert_many: bool) -> tuple[Rows, Rows]:
    async def write(uow: UnitOfWork) -> None:
        if via_insert_many:
            await uow.conn.insert_many(things, ROWS)
            await uow.conn.insert_many(stamped, [{"name": "s"}])
        else:
            for row in ROWS:  # one statement per shape, as SQLAlchemy needs
                await uow.conn.execute(insert(things), [row])
            await uow.conn.execute(insert(stamped), [{"name": "s"}])

    _, rows, made = on_fresh_tables(url, write)
    return rows, made


def test_insert_many_stores_what_sqlalchemy_stores(tmp_path: Path) -> None:
    ours = stored(f"sqlite:///{tmp_path}/ours.db", via_insert_many=True)
    theirs = stored(f"sqlite:///{tmp_path}/theirs.db", via_insert_many=False)
    assert ours == theirs
    rows, made = ours
    assert [r["flag"] for r in rows] == [True, False, True]
    assert [r["count"] for r in rows] == [7, 1, 7]
    assert rows[2]["at"] == datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert made == [{"id": 1, "name": "s", "made": "made-by-callable"}]


CHANGES: list[dict[str, Any]] = [
    {"_id": 1, "_name": "a", "data": {"new": True}, "at": datetime(2027, 5, 6, tzinfo=UTC)},
    {"_id": 2, "_name": "b", "data": None, "at": None},
    {"_id": 3, "_name": "not c", "data": [], "at": datetime(2027, 5, 6, tzinfo=UTC)},  # no match
]
MATCH = (("_id", "id"), ("_name", "name"))


def updated(url: str, via_update_many: bool) -> tuple[int, Rows]:
    async def write(uow: UnitOfWork) -> int:
        await uow.conn.insert_many(things, ROWS)
        if via_update_many:
            return await uow.conn.update_many(things, MATCH, CHANGES)
        stmt = update(things).where(
            things.c.id == bindparam("_id"), things.c.name == bindparam("_name")
        )
        return int((await uow.conn.execute(stmt, CHANGES)).rowcount)

    changed, rows, _ = on_fresh_tables(url, write)
    return changed, rows


def test_update_many_changes_what_sqlalchemy_changes(tmp_path: Path) -> None:
    ours = updated(f"sqlite:///{tmp_path}/ours.db", via_update_many=True)
    theirs = updated(f"sqlite:///{tmp_path}/theirs.db", via_update_many=False)
    assert ours == theirs
    changed, rows = ours
    assert changed == 2
    assert [r["data"] for r in rows] == [{"new": True}, None, [1, 2]]


def test_rows_where_in_reads_what_sqlalchemy_reads(tmp_path: Path) -> None:
    """Every column through its result processor, whatever the number of values asked for."""
    many = [{"name": f"n{i}", "data": {"i": i}, "at": ROWS[0]["at"]} for i in range(1200)]
    wanted = [2, 1, 3, 5000, *range(100, 1200, 2)]  # more than one IN list takes; 5000 is missing

    async def write(uow: UnitOfWork) -> tuple[Rows | None, Rows]:
        await uow.conn.insert_many(things, ROWS + many)
        ours = await uow.conn.rows_where_in(things, "id", wanted)
        theirs = await uow.conn.execute(select(things).where(things.c.id.in_(wanted)))
        return ours, [dict(r) for r in theirs.mappings()]

    (ours, theirs), _, _ = on_fresh_tables(f"sqlite:///{tmp_path}/read.db", write)
    assert ours is not None
    assert len(ours) == len(set(wanted)) - 1 > MAX_IN
    assert sorted(ours, key=lambda r: r["id"]) == sorted(theirs, key=lambda r: r["id"])
    first = next(r for r in ours if r["id"] == 1)
    assert first["data"] == {"k": [1, "x"]} and first["flag"] is True
    assert first["at"] == ROWS[0]["at"] and first["at"].tzinfo is UTC
