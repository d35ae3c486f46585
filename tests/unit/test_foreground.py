"""Workers give way to bursts of requests, not to an application sending one message at a time."""

from __future__ import annotations

import asyncio
import time

import pytest

from signalpost.kit.foreground import Foreground


def test_wait_quiet() -> None:
    async def go() -> None:
        fg = Foreground(busy_at=3, quiet=0.05, max_defer=0.3)

        answers: list[bool] = []

        async def timed() -> float:
            t0 = time.monotonic()
            answers.append(await fg.wait_quiet())
            return time.monotonic() - t0

        assert await timed() < 0.02  # nothing going on
        fg.started()
        fg.started()
        assert await timed() < 0.02  # two requests in flight are not a burst
        fg.started()  # three: busy
        assert await timed() == pytest.approx(0.3, abs=0.1)  # busy all along: bounded
        fg.finished()
        fg.started()  # busy again, a moment ago
        fg.finished()
        assert await timed() == pytest.approx(0.05, abs=0.04)  # waits out `quiet`
        assert await timed() < 0.02
        assert answers == [True, True, False, True, True]  # False: gave up waiting

    asyncio.run(go())


def test_settings_are_checked() -> None:
    with pytest.raises(ValueError):
        Foreground(busy_at=0)
    with pytest.raises(ValueError):
        Foreground(quiet=0)
