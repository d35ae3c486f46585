"""Settling jobs that carry several items from the outcomes of their items (kit.queue.settle)."""

from __future__ import annotations

from signalpost.kit.queue import Job, JobError, RetryLater, settle


def job(job_id: int, *items: str) -> Job:
    return Job(job_id, "t", {"items": list(items)}, 1, 0, None)


def items(j: Job) -> list[str]:
    return list(j.payload["items"])


def test_a_job_whose_items_are_all_done_is_complete() -> None:
    s = settle([job(1, "a", "b")], items, {})
    assert [j.id for j in s.complete] == [1] and not s.outcomes and not s.carried


def test_a_job_whose_items_all_wait_alike_runs_again_whole() -> None:
    s = settle([job(1, "a", "b")], items, {(1, "a"): 2.0, (1, "b"): 2.0})
    assert not s.complete and not s.carried
    assert isinstance(s.outcomes[1], RetryLater) and s.outcomes[1].delay == 2.0


def test_waiting_items_of_a_job_otherwise_done_go_on_in_new_jobs_by_delay() -> None:
    later = {(1, "b"): 1.0, (1, "c"): 5.0, (1, "d"): 1.0}
    s = settle([job(1, "a", "b", "c", "d")], items, later)
    assert [j.id for j in s.complete] == [1] and not s.outcomes
    assert s.carried == {1.0: ["b", "d"], 5.0: ["c"]}


def test_an_error_of_one_item_is_the_outcome_of_its_whole_job() -> None:
    error = JobError("carrier down")
    s = settle([job(1, "a", "b"), job(2, "c")], items, {(1, "a"): 1.0}, {(1, "b"): error})
    assert s.outcomes == {1: error}
    assert [j.id for j in s.complete] == [2] and not s.carried


def test_outcomes_are_keyed_by_job_so_one_item_in_two_jobs_is_settled_in_each() -> None:
    s = settle([job(1, "a"), job(2, "a")], items, {(2, "a"): 0.5})
    assert [j.id for j in s.complete] == [1]
    assert isinstance(s.outcomes[2], RetryLater)
