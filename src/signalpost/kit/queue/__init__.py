"""The durable job queue: a table in the same database as the business rows.

Enqueue inside the caller's unit of work, so a job exists exactly when the change that caused it
committed. Workers claim due jobs in batches (PostgreSQL: `FOR UPDATE SKIP LOCKED`; SQLite: one short
write transaction), hold them under a lease that they keep extending while the job runs, and either
delete them (done), reschedule them (retry with capped exponential backoff) or mark them `failed`
(visible, never silently dropped). A job whose worker died is claimed again when its lease runs out.
Kinds with a batch handler get many due jobs at once and finish them with a few statements in all
(`JobKind`), and a job may carry many items (`enqueue_items`: the messages of a group commit, the
receipts or webhook events of a batch), settled one by one (`settle`): that is what lets one
process move a thousand messages a second.

Caveats:
- Jobs sharing a `group_key` run one at a time in id order. Ids come from the database in insert
  order, so the order is the order of the enqueueing transactions only when they do not overlap.
- A worker claims only the kinds it knows. A job of a kind that no running worker knows stays queued
  (a newer worker may know it) rather than failing.
- Clocks: `run_at` and leases use each process's UTC clock; keep the machines' clocks in sync.

Modules: `retry` (policy, handler errors), `enqueue` (enqueue, settle), `store` (claim,
finish, leases), `worker` (the worker loop and `JobKind`). Import from `signalpost.kit.queue`.
"""

from __future__ import annotations

from signalpost.kit.queue.enqueue import (
    Settled,
    enqueue,
    enqueue_items,
    enqueue_many,
    finish_settled,
    settle,
)
from signalpost.kit.queue.retry import (
    ERROR_MAX_CHARS,
    JobError,
    LeaseLost,
    PermanentJobError,
    RetryDecision,
    RetryLater,
    RetryPolicy,
)
from signalpost.kit.queue.store import (
    Job,
    claim,
    claim_statement,
    complete,
    complete_many_within,
    complete_within,
    extend_leases,
    failed_jobs,
    failed_params,
    finish_batch,
    held,
    mark_failed,
    requeue_expired_statement,
    reschedule,
    reschedule_params,
)
from signalpost.kit.queue.worker import (
    BUSY_AFTER_CLAIM,
    DEFAULT_LANE,
    SLICE_JOBS,
    WORKER_ID_MAX_CHARS,
    BatchHandler,
    DetachedHandler,
    Handler,
    JobKind,
    LaneKinds,
    Outcomes,
    Worker,
    lanes,
)

__all__ = [
    "BUSY_AFTER_CLAIM",
    "DEFAULT_LANE",
    "ERROR_MAX_CHARS",
    "SLICE_JOBS",
    "WORKER_ID_MAX_CHARS",
    "BatchHandler",
    "DetachedHandler",
    "Handler",
    "Job",
    "JobError",
    "JobKind",
    "LaneKinds",
    "LeaseLost",
    "Outcomes",
    "PermanentJobError",
    "RetryDecision",
    "RetryLater",
    "RetryPolicy",
    "Settled",
    "Worker",
    "claim",
    "claim_statement",
    "complete",
    "complete_many_within",
    "complete_within",
    "enqueue",
    "enqueue_items",
    "enqueue_many",
    "extend_leases",
    "failed_jobs",
    "failed_params",
    "finish_batch",
    "finish_settled",
    "held",
    "lanes",
    "mark_failed",
    "requeue_expired_statement",
    "reschedule",
    "reschedule_params",
    "settle",
]
