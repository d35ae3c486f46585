"""The per-host gate of webhook POSTs: when a receiver's slots are full and its recent pace says a
POST would wait too long for one, the POST is put off instead of holding its job."""

from __future__ import annotations

import pytest

from signalpost.webhooks.jobs import LATENCY_WEIGHT, MAX_HOST_WAIT, HostGate


def test_a_free_slot_means_no_wait() -> None:
    gate = HostGate(2)
    gate.latency = 10.0
    gate.busy = 1
    assert gate.wait_estimate() == 0.0


def test_the_wait_grows_with_the_queue_and_the_receivers_pace() -> None:
    gate = HostGate(2)
    gate.busy = 2
    gate.latency = 0.01  # a fast receiver: a long queue still moves in a moment
    gate.waiting = 100
    assert gate.wait_estimate() < MAX_HOST_WAIT
    gate.latency = 2.0  # a slow one: (3 waiting + this one) / 2 slots × 2 s
    gate.waiting = 3
    assert gate.wait_estimate() == pytest.approx(4.0)
    assert gate.wait_estimate() > MAX_HOST_WAIT


def test_the_pace_is_a_moving_average() -> None:
    gate = HostGate(1)
    gate.took(10.0)
    assert gate.latency == pytest.approx(10.0 * LATENCY_WEIGHT)
    for _ in range(50):
        gate.took(0.1)
    assert gate.latency == pytest.approx(0.1, rel=0.01)
