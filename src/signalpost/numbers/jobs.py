"""The `numbers.bulk_update` job: applies an accepted bulk profile assignment.

It runs inside the unit of work that also completes the job, so the numbers, the order's
`success`/`failed` lists and the job's deletion commit together; a repeated run finds nothing
pending and does nothing.
"""

from __future__ import annotations

from signalpost.context import AppContext
from signalpost.kit.db import UnitOfWork
from signalpost.kit.queue import Job, JobKind, RetryPolicy
from signalpost.numbers import service


async def run_bulk_update(uow: UnitOfWork, job: Job) -> None:
    await service.process_bulk_update(uow, str(job.payload["order_id"]))


def kinds(ctx: AppContext) -> dict[str, JobKind]:
    return {
        service.BULK_UPDATE_JOB: JobKind(
            handler=run_bulk_update, retry=RetryPolicy(max_attempts=5, base=0.5, cap=30.0)
        )
    }
