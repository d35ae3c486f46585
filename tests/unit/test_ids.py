"""kit.ids: UUIDv7 ids ascend in the order they are made, and a forked child makes its own."""

from __future__ import annotations

import os
import time
import uuid

from signalpost.kit import ids


def test_uuid7_shape_and_time() -> None:
    before = time.time_ns() // 1_000_000
    value = uuid.UUID(ids.new_uuid())
    assert value.version == 7 and value.variant == uuid.RFC_4122
    assert before <= value.int >> 80 <= time.time_ns() // 1_000_000 + 1


def test_ids_ascend_in_the_order_they_are_made() -> None:
    made = [ids.new_uuid() for _ in range(50)] + ids.new_uuids(10_000) + [ids.new_uuid()]
    assert made == sorted(made)
    assert len(set(made)) == len(made)
    # More than a millisecond's counter: the time runs ahead by a few milliseconds at most.
    last_ms = uuid.UUID(made[-1]).int >> 80
    assert last_ms <= time.time_ns() // 1_000_000 + 10


def test_a_forked_child_does_not_repeat_its_parents_random_bits() -> None:
    ids.new_uuid()  # the parent has random bits read ahead
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child
        os.write(write, ids.new_uuid().encode())
        os._exit(0)
    os.waitpid(pid, 0)
    child = os.read(read, 64).decode()
    parent = ids.new_uuid()
    assert child[-17:] != parent[-17:]  # the random part (the counters may coincide)
