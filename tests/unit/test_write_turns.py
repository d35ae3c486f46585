"""kit.db.WriteTurns: the API's SQLite transactions go ahead of background work, which still moves."""

from __future__ import annotations

import asyncio

import pytest

from signalpost.kit.db import WriteTurns, background_work


async def _take(turns: WriteTurns, name: str, background: bool, order: list[str]) -> None:
    background_work.set(background)  # this task's own context
    await turns.acquire()
    order.append(name)
    await asyncio.sleep(0)
    turns.release()


async def _queue(
    turns: WriteTurns, *waiters: tuple[str, bool]
) -> tuple[list[str], list[asyncio.Task[None]]]:
    """Start the waiters in this order while the writer is held; they wait in line."""
    order: list[str] = []
    tasks = []
    for name, background in waiters:
        tasks.append(asyncio.create_task(_take(turns, name, background, order)))
        await asyncio.sleep(0)  # each reaches `acquire` before the next starts
    return order, tasks


def test_a_free_writer_is_taken_at_once() -> None:
    async def go() -> None:
        turns = WriteTurns()
        await asyncio.wait_for(turns.acquire(), 0.1)
        assert turns.held
        turns.release()
        assert not turns.held

    asyncio.run(go())


def test_api_transactions_go_ahead_of_background_work() -> None:
    async def go() -> None:
        turns = WriteTurns(background_every=60)
        background_work.set(True)
        await turns.acquire()  # background work holds the writer (and just had its turn)
        order, tasks = await _queue(
            turns, ("job-1", True), ("job-2", True), ("api-1", False), ("api-2", False)
        )
        turns.release()
        await asyncio.gather(*tasks)
        assert order == ["api-1", "api-2", "job-1", "job-2"]
        assert not turns.held

    asyncio.run(go())


def test_background_work_gets_a_turn_while_the_api_keeps_waiting() -> None:
    async def go() -> None:
        turns = WriteTurns(background_every=0.05)
        await turns.acquire()  # the API holds the writer
        order, tasks = await _queue(turns, ("job", True), ("api-1", False))
        await asyncio.sleep(0.06)  # background work has not had a turn for longer than its period
        turns.release()
        await asyncio.gather(*tasks)
        assert order == ["job", "api-1"]

    asyncio.run(go())


def test_a_cancelled_waiter_is_skipped() -> None:
    async def go() -> None:
        turns = WriteTurns()
        await turns.acquire()
        order, tasks = await _queue(turns, ("gone", False), ("next", False))
        tasks[0].cancel()
        await asyncio.sleep(0)
        turns.release()
        await tasks[1]
        with pytest.raises(asyncio.CancelledError):
            await tasks[0]
        assert order == ["next"]
        assert not turns.held

    asyncio.run(go())


def test_a_turn_handed_to_a_task_cancelled_before_it_ran_is_passed_on() -> None:
    async def go() -> None:
        turns = WriteTurns()
        await turns.acquire()
        order, tasks = await _queue(turns, ("gone", False), ("next", False))
        turns.release()  # hands the writer to "gone", which has not run yet
        tasks[0].cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        assert order == ["next"]
        assert not turns.held

    asyncio.run(go())
