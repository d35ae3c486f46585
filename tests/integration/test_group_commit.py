"""Group commit on a real database (SQLite file and PostgreSQL): concurrent items share one
transaction, each caller gets its own result only after the commit, and an item that fails is taken
out without leaving anything of its own behind or failing the others."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

import pytest
from sqlalchemy import text

from signalpost.kit import migrate
from signalpost.kit.db import Database, UnitOfWork
from signalpost.kit.groupcommit import GroupCommit

T = TypeVar("T")


@pytest.fixture(scope="module")
def db_url(database_url: str) -> str:
    async def go() -> None:
        db = Database(database_url)
        try:
            await migrate.upgrade(db)
            async with db.transaction() as uow:
                await uow.conn.execute(
                    text("CREATE TABLE gc_items (item INTEGER PRIMARY KEY, note VARCHAR(20))")
                )
        finally:
            await db.dispose()

    asyncio.run(go())
    return database_url


def arun(url: str, fn: Callable[[Database], Awaitable[T]]) -> T:
    async def go() -> T:
        db = Database(url)
        try:
            async with db.transaction() as uow:
                await uow.conn.execute(text("DELETE FROM gc_items"))
            return await asyncio.wait_for(fn(db), 30)
        finally:
            await db.dispose()

    return asyncio.run(go())


async def stored(db: Database) -> list[tuple[int, str]]:
    async with db.transaction() as uow:
        rows = await uow.conn.execute(text("SELECT item, note FROM gc_items ORDER BY item"))
        return [(int(r[0]), str(r[1])) for r in rows]


class Boom(Exception):
    pass


def test_concurrent_items_share_a_transaction(db_url: str) -> None:
    units: list[UnitOfWork] = []  # kept alive, so their ids stay distinct

    async def work(uow: UnitOfWork, item: int) -> int:
        units.append(uow)
        await uow.conn.execute(
            text("INSERT INTO gc_items (item, note) VALUES (:i, 'ok')"), {"i": item}
        )
        return item * 10

    async def go(db: Database) -> tuple[list[int], list[tuple[int, str]]]:
        group = GroupCommit(db, work)
        results = await asyncio.gather(*(group.submit(i) for i in range(20)))
        return list(results), await stored(db)

    results, rows = arun(db_url, go)
    assert results == [i * 10 for i in range(20)]
    assert rows == [(i, "ok") for i in range(20)]
    assert len({id(u) for u in units}) == 1  # one unit of work for all twenty


def test_a_failing_item_is_taken_out_and_the_others_commit(db_url: str) -> None:
    async def work(uow: UnitOfWork, item: int) -> int:
        await uow.conn.execute(
            text("INSERT INTO gc_items (item, note) VALUES (:i, 'ok')"), {"i": item}
        )
        if item in (3, 7):
            raise Boom(f"item {item}")  # after its write: the write must not survive
        return item

    async def go(db: Database) -> tuple[list[object], list[tuple[int, str]]]:
        group = GroupCommit(db, work)
        results = await asyncio.gather(
            *(group.submit(i) for i in range(10)), return_exceptions=True
        )
        return list(results), await stored(db)

    results, rows = arun(db_url, go)
    for i, r in enumerate(results):
        if i in (3, 7):
            assert isinstance(r, Boom) and str(r) == f"item {i}"
        else:
            assert r == i
    assert rows == [(i, "ok") for i in range(10) if i not in (3, 7)]


def test_items_that_conflict_with_each_other(db_url: str) -> None:
    """Two items that conflict only with each other: the first commits, the second gets the error."""

    async def work(uow: UnitOfWork, item: tuple[int, str]) -> str:
        await uow.conn.execute(
            text("INSERT INTO gc_items (item, note) VALUES (:i, :n)"), {"i": item[0], "n": item[1]}
        )
        return item[1]

    async def go(db: Database) -> tuple[list[object], list[tuple[int, str]]]:
        group = GroupCommit(db, work)
        results = await asyncio.gather(
            group.submit((1, "first")),
            group.submit((1, "second")),
            group.submit((2, "other")),
            return_exceptions=True,
        )
        return list(results), await stored(db)

    results, rows = arun(db_url, go)
    assert results[0] == "first" and results[2] == "other"
    assert isinstance(results[1], Exception)
    assert rows == [(1, "first"), (2, "other")]


def test_items_submitted_during_a_commit_form_the_next_group(db_url: str) -> None:
    units: list[UnitOfWork] = []  # kept alive, so their ids stay distinct

    async def work(uow: UnitOfWork, item: int) -> int:
        units.append(uow)
        await uow.conn.execute(
            text("INSERT INTO gc_items (item, note) VALUES (:i, 'ok')"), {"i": item}
        )
        return item

    async def go(db: Database) -> list[tuple[int, str]]:
        group = GroupCommit(db, work, max_group=4)
        first = await asyncio.gather(*(group.submit(i) for i in range(10)))
        assert list(first) == list(range(10))
        assert await group.submit(10) == 10  # a later lone item is not left waiting
        return await stored(db)

    rows = arun(db_url, go)
    assert rows == [(i, "ok") for i in range(11)]
    assert len({id(u) for u in units}) >= 4  # groups of at most four
