"""Group commit: the work of concurrent requests shares one transaction.

Each transaction has a fixed cost — begin, commit, the write-ahead-log append on SQLite, a round
trip on PostgreSQL — that under load dwarfs the work of a single request. `GroupCommit.submit(item)`
hands an item over and waits: items submitted while the event loop is busy are gathered, and one
transaction runs `work(uow, item)` for each of them, in order. Every caller gets its own result (or
its own exception) only after that transaction committed, so nothing is acknowledged that is not
durable.

An item whose work raises is taken out of the group: the transaction is rolled back and the other
items run again in a new one. Another item's writes are therefore never committed half-done, and
errors cost nothing while there are none. `work` must thus be repeatable: its only effects are on
the database, in the unit of work it gets.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

from signalpost.kit.db import Database, UnitOfWork

T = TypeVar("T")
R = TypeVar("R")

log = logging.getLogger("signalpost.groupcommit")


class _ItemFailed(Exception):
    def __init__(self, index: int, error: BaseException) -> None:
        super().__init__(str(error))
        self.index = index
        self.error = error


class GroupCommit(Generic[T, R]):
    """Runs `work(uow, item)` for concurrently submitted items in shared transactions."""

    def __init__(
        self,
        db: Database,
        work: Callable[[UnitOfWork, T], Awaitable[R]],
        *,
        max_group: int = 128,
    ) -> None:
        if max_group < 1:
            raise ValueError("max_group must be at least 1")
        self.db = db
        self.work = work
        self.max_group = max_group
        self._pending: list[tuple[T, asyncio.Future[R]]] = []
        self._draining = False
        self._task: asyncio.Task[None] | None = None

    async def submit(self, item: T) -> R:
        """`work(uow, item)`'s result once its transaction committed; its exception otherwise."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[R] = loop.create_future()
        self._pending.append((item, future))
        if not self._draining:
            self._draining = True
            # Not now: the requests already waiting in this turn of the loop join the group first.
            loop.call_soon(self._start)
        return await future

    def _start(self) -> None:
        self._task = asyncio.ensure_future(self._drain())

    async def _drain(self) -> None:
        try:
            while self._pending:
                group = self._pending[: self.max_group]
                del self._pending[: self.max_group]
                try:
                    await self._run(group)
                except BaseException as exc:  # cancelled, or a bug: no caller may wait forever
                    for _, future in group:
                        if not future.done():
                            future.set_exception(exc)
                    if not isinstance(exc, Exception):
                        raise
                    log.exception("group commit failed")
        finally:
            self._draining = False
            if self._pending:  # arrived while we were stopping on an error
                self._draining = True
                asyncio.get_running_loop().call_soon(self._start)

    async def _run(self, group: list[tuple[T, asyncio.Future[R]]]) -> None:
        while group:
            try:
                results = await self._transaction([item for item, _ in group])
            except _ItemFailed as failed:
                _, future = group.pop(failed.index)
                if not future.done():
                    future.set_exception(failed.error)
                continue
            except Exception as exc:
                # The commit itself failed. Alone, the item gets the error; in a group, each item
                # runs on its own so that one cannot fail the others.
                if len(group) == 1:
                    if not group[0][1].done():
                        group[0][1].set_exception(exc)
                    return
                for entry in group:
                    await self._run([entry])
                return
            for (_, future), result in zip(group, results, strict=True):
                if not future.done():
                    future.set_result(result)
            return

    async def _transaction(self, items: list[T]) -> list[R]:
        results: list[R] = []
        async with self.db.transaction() as uow:
            for index, item in enumerate(items):
                try:
                    results.append(await self.work(uow, item))
                except Exception as exc:
                    raise _ItemFailed(index, exc) from exc
        return results
