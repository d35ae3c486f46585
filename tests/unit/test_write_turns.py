"""kit.db.WriteTurns: the API's SQLite transactions and background work's take turns."""

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


def test_the_api_and_background_work_take_turns() -> None:
    async def go() -> None:
        turns = WriteTurns()
        background_work.set(True)
        await turns.acquire()  # background work holds the writer
        order, tasks = await _queue(
            turns,
            ("job-1", True),
            ("job-2", True),
            ("job-3", True),
            ("api-1", False),
            ("api-2", False),
        )
        turns.release()
        await asyncio.gather(*tasks)
        # A request waits behind one background transaction at most, not behind all of them.
        assert order == ["api-1", "job-1", "api-2", "job-2", "job-3"]
        assert not turns.held

    asyncio.run(go())


def test_one_line_alone_goes_in_arrival_order() -> None:
    async def go() -> None:
        turns = WriteTurns()
        await turns.acquire()
        order, tasks = await _queue(turns, ("job-1", True), ("job-2", True), ("job-3", True))
        turns.release()
        await asyncio.gather(*tasks)
        assert order == ["job-1", "job-2", "job-3"]

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
