"""`Conn.insert_many`, `Conn.update_many` and `Conn.rows_where_in` store and read exactly what
SQLAlchemy's own statements do, on both backends: the driver paths (SQLite's executemany,
PostgreSQL's statements from arrays) apply the same bind and result processors and constant
defaults, and leave to SQLAlchemy what they cannot do themselves."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

import pytest
from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Float,
    Integer,
    MetaData,
    Numeric,
    String,
    Table,
    bindparam,
    insert,
    select,
    update,
)
from sqlalchemy.exc import DBAPIError, IntegrityError

from signalpost.kit.db import MAX_IN, Database, UnitOfWork, UTCDateTime
from tests.conftest import BACKENDS, create_pg_database, drop_pg_database

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
    Column("ratio", Float, nullable=True),
    Column("price", Numeric(10, 4), nullable=True),
)
stamped = Table(
    "stamped",
    meta,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(20), nullable=False),
    Column("made", String(40), nullable=False, default=lambda: "made-by-callable"),
)

ROWS: list[dict[str, Any]] = [
    {
        "name": "a",
        "data": {"k": [1, "x"]},
        "at": datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=UTC),
        "ratio": 0.25,
        "price": Decimal("0.0075"),
    },
    {"name": "b", "data": None, "at": None, "flag": False, "count": 1},
    {
        "name": "c",
        "data": [1, 2],
        "at": datetime(2026, 1, 2, 5, 4, 5, tzinfo=timezone(timedelta(hours=2))),
        "note": "n",
    },
]


Rows = list[dict[str, Any]]


@pytest.fixture(params=BACKENDS)
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh database per test and backend (the tables are made anew for each write)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/bulk.db"
        return
    pg_url, name = create_pg_database()
    yield pg_url
    drop_pg_database(name)


def on_fresh_tables(url: str, write: Callable[[UnitOfWork], Awaitable[T]]) -> tuple[T, Rows, Rows]:
    """`write`'s result in a first transaction on new tables, then the rows of both tables."""

    async def go() -> tuple[T, Rows, Rows]:
        db = Database(url)
        try:
            async with db.engine.begin() as conn:
                await conn.run_sync(meta.drop_all)
                await conn.run_sync(meta.create_all)
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


def test_insert_many_stores_what_sqlalchemy_stores(url: str) -> None:
    ours = stored(url, via_insert_many=True)
    theirs = stored(url, via_insert_many=False)
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


def updated(
    url: str, via_update_many: bool, changes: list[dict[str, Any]] = CHANGES
) -> tuple[int, Rows]:
    async def write(uow: UnitOfWork) -> int:
        await uow.conn.insert_many(things, ROWS)
        if via_update_many:
            return await uow.conn.update_many(things, MATCH, changes)
        stmt = update(things).where(
            things.c.id == bindparam("_id"), things.c.name == bindparam("_name")
        )
        changed = 0
        for change in changes:  # one at a time: a driver's executemany may not count rows
            changed += int((await uow.conn.execute(stmt, change)).rowcount)
        return changed

    changed, rows, _ = on_fresh_tables(url, write)
    return changed, rows


def test_update_many_changes_what_sqlalchemy_changes(url: str) -> None:
    ours = updated(url, via_update_many=True)
    theirs = updated(url, via_update_many=False)
    assert ours == theirs
    changed, rows = ours
    assert changed == 2
    assert [r["data"] for r in rows] == [{"new": True}, None, [1, 2]]


def test_update_many_applies_a_row_given_twice_in_order(url: str) -> None:
    twice = [*CHANGES, {**CHANGES[0], "data": {"second": 2}}]
    ours = updated(url, via_update_many=True, changes=twice)
    assert ours == updated(url, via_update_many=False, changes=twice)
    assert ours[1][0]["data"] == {"second": 2}


def test_insert_many_raises_sqlalchemys_integrity_error_on_a_taken_key(url: str) -> None:
    async def write(uow: UnitOfWork) -> None:
        await uow.conn.insert_many(things, [{"id": 1, "name": "a"}])
        await uow.conn.insert_many(things, [{"id": 2, "name": "b"}, {"id": 1, "name": "c"}])

    with pytest.raises(IntegrityError):
        on_fresh_tables(url, write)


def test_rows_where_in_reads_what_sqlalchemy_reads(url: str) -> None:
    """Every column through its result processor, whatever the number of values asked for."""
    many = [{"name": f"n{i}", "data": {"i": i}, "at": ROWS[0]["at"]} for i in range(1200)]
    wanted = [2, 1, 3, 5000, *range(100, 1200, 2)]  # more than one IN list takes; 5000 is missing

    async def write(uow: UnitOfWork) -> tuple[Rows, Rows]:
        await uow.conn.insert_many(things, ROWS + many)
        ours = await uow.conn.rows_where_in(things, "id", wanted)
        theirs = await uow.conn.execute(select(things).where(things.c.id.in_(wanted)))
        return ours, [dict(r) for r in theirs.mappings()]

    (ours, theirs), _, _ = on_fresh_tables(url, write)
    assert len(ours) == len(set(wanted)) - 1 > MAX_IN
    assert sorted(ours, key=lambda r: r["id"]) == sorted(theirs, key=lambda r: r["id"])
    first = next(r for r in ours if r["id"] == 1)
    assert first["data"] == {"k": [1, "x"]} and first["flag"] is True
    assert first["at"] == ROWS[0]["at"] and first["at"].tzinfo is UTC


@pytest.mark.postgres
def test_rows_where_in_for_update_locks_the_rows_on_postgresql() -> None:
    """Another transaction cannot lock a row read `for_update` until the first one ends."""
    pg_url, name = create_pg_database()

    async def go() -> None:
        db = Database(pg_url)
        try:
            async with db.engine.begin() as conn:
                await conn.run_sync(meta.create_all)
            async with db.transaction() as uow:
                await uow.conn.insert_many(things, ROWS)
            async with db.transaction() as uow:
                got = await uow.conn.rows_where_in(things, "id", [2, 1], for_update=True)
                assert [r["id"] for r in got] == [1, 2]
                async with db.engine.connect() as other:
                    with pytest.raises(DBAPIError, match="could not obtain lock"):
                        await other.execute(
                            select(things).where(things.c.id == 2).with_for_update(nowait=True)
                        )
                async with db.engine.connect() as other:
                    free = select(things).where(things.c.id == 3).with_for_update(nowait=True)
                    assert len((await other.execute(free)).all()) == 1
        finally:
            await db.dispose()

    try:
        asyncio.run(go())
    finally:
        drop_pg_database(name)
