"""The per-host gate of webhook POSTs: when a receiver's slots are full and its recent pace says a
POST would wait too long for one, the POST is put off instead of holding its job, to when the
host should have room for it."""

from __future__ import annotations

import pytest

from signalpost.webhooks.jobs import (
    LATENCY_WEIGHT,
    MAX_HOST_WAIT,
    MAX_PUT_OFF,
    MIN_PUT_OFF,
    SLOW_HOST,
    HostGate,
)


def test_free_slots_admit_at_once() -> None:
    gate = HostGate(2)
    gate.latency = 10.0
    assert gate.admit(0.0) is None
    assert gate.admit(0.0) is None
    assert gate.queued == 2


def test_a_fast_receiver_admits_a_long_queue() -> None:
    gate = HostGate(2)
    gate.latency = 0.005
    assert all(gate.admit(0.0) is None for _ in range(200))
    assert gate.wait_estimate() < MAX_HOST_WAIT


def test_a_long_line_before_a_fast_receiver_is_not_put_off() -> None:
    # A burst left thousands of POSTs waiting, and the pace measured meanwhile (0.37 s, our own
    # busy loop) would put them off for 20 s: a fast host's line is ours and clears at our pace.
    gate = HostGate(50)
    gate.latency = 0.37
    assert all(gate.admit(0.0) is None for _ in range(3000))
    assert gate.wait_estimate() > MAX_HOST_WAIT
    gate.latency = SLOW_HOST
    assert gate.admit(0.0) is not None  # a slow one's are


def test_a_slow_receiver_puts_off_what_would_wait_too_long() -> None:
    gate = HostGate(2)
    gate.latency = 2.0  # each POST holds its slot 2 s: the host takes one a second
    admitted = [gate.admit(0.0) for _ in range(3)]
    assert admitted == [None, None, None]  # the third waits 1 s for a slot: still admitted
    assert gate.wait_estimate() == pytest.approx(2.0)
    delays = [gate.admit(0.0) for _ in range(6)]
    assert all(d is not None for d in delays)
    # Lined up at the host's pace (one a second), in whole seconds, not all at the same time.
    assert delays == sorted(delays)
    assert delays[0] == pytest.approx(2.0)
    assert delays == [2.0, 3.0, 4.0, 5.0, 6.0, 7.0]
    assert gate.queued == 3  # put-off POSTs are not counted in


def test_put_off_delays_are_bounded() -> None:
    gate = HostGate(1)
    gate.queued = 1
    gate.latency = 1.2
    assert gate.admit(0.0) == MIN_PUT_OFF * 2  # 1.2 s, rounded up to whole seconds
    gate.latency = 10_000.0
    assert gate.admit(0.0) == MAX_PUT_OFF


def test_the_pace_is_a_moving_average_of_the_posts_that_got_a_slot() -> None:
    gate = HostGate(1)
    assert gate.admit(0.0) is None
    gate.done(10.0)
    assert gate.latency == pytest.approx(10.0 * LATENCY_WEIGHT)
    for _ in range(50):
        gate.admit(0.0)
        gate.done(0.1)
    assert gate.latency == pytest.approx(0.1, rel=0.01)
    gate.admit(0.0)
    gate.done(None)  # cancelled while waiting: no pace measured
    assert gate.latency == pytest.approx(0.1, rel=0.01)
    assert gate.queued == 0
