"""`GET /metrics` in Prometheus's text format.

This process's HTTP request counters, and gauges, counters and a histogram read from the database at
scrape time: messages by direction, status and carrier; the job queue's depth and oldest due job
by kind; webhook attempts by result with their latency; rate-limit waits and backlogs. Every
process answers the database figures alike; the HTTP counters are the answering process's own.
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Iterable
from datetime import datetime

from fastapi import APIRouter, Request
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector, CollectorRegistry
from starlette.responses import Response

from signalpost.accounts.deps import Ctx
from signalpost.kit.clock import utcnow
from signalpost.kit.errors import ApiError
from signalpost.kit.metrics import ProcessMetrics
from signalpost.metrics import repository as repo

public_router = APIRouter(tags=["operations"])


class _Snapshot(Collector):
    def __init__(self, families: list[Metric]) -> None:
        self.families = families

    def collect(self) -> Iterable[Metric]:
        return iter(self.families)


@public_router.get(
    "/metrics",
    summary="Prometheus metrics",
    response_class=Response,
    responses={
        200: {"content": {CONTENT_TYPE_LATEST: {}}, "description": "Prometheus text."},
        401: {"description": "SIGNALPOST_METRICS_TOKEN is set and was not given (10009)."},
    },
)
async def metrics(ctx: Ctx, request: Request) -> Response:
    """Prometheus text exposition (see the module docstring for what it holds). With
    `SIGNALPOST_METRICS_TOKEN` set, only for `Authorization: Bearer <that token>`."""
    token = ctx.settings.metrics_token
    if token is not None:
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        expected = token.get_secret_value()
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip(), expected):
            raise ApiError(
                401,
                "10009",
                "Authentication failed",
                "The metrics need 'Authorization: Bearer <SIGNALPOST_METRICS_TOKEN>'.",
                should_retry=False,
                headers={"WWW-Authenticate": "Bearer"},
            )
    now = utcnow()
    wall = time.time()
    found = await ctx.db.read(lambda conn: repo.snapshot(conn, now, wall))
    families = _database_families(found, now, ctx.job_kinds)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Snapshot(families))
    body = generate_latest(registry)
    process: ProcessMetrics | None = ctx.extras.get("process_metrics")
    if process is not None:
        body = generate_latest(process.registry) + body
    return Response(body, media_type=CONTENT_TYPE_LATEST)


def _database_families(found: repo.Snapshot, now: datetime, kinds: Iterable[str]) -> list[Metric]:
    out: list[Metric] = []
    msgs = GaugeMetricFamily(
        "signalpost_messages",
        "Stored messages by direction, recipient status and carrier.",
        labels=["direction", "status", "carrier"],
    )
    for direction, status, carrier, count in found.messages:
        msgs.add_metric([direction, status, carrier], count)
    out.append(msgs)
    depth = GaugeMetricFamily(
        "signalpost_queue_jobs", "Jobs in the queue by kind and status.", labels=["kind", "status"]
    )
    oldest = GaugeMetricFamily(
        "signalpost_queue_oldest_due_seconds",
        "How long the oldest due, unclaimed job of each kind has been waiting.",
        labels=["kind"],
    )
    queue = found.queue
    for kind in kinds:  # every kind this process runs has a series, 0 when idle
        queue.setdefault(kind, repo.QueueKind()).depth.setdefault("queued", 0)
    for kind, state in sorted(queue.items()):
        for status, count in sorted(state.depth.items()):
            depth.add_metric([kind, status], count)
        waited = (now - state.oldest_due).total_seconds() if state.oldest_due else 0.0
        oldest.add_metric([kind], max(waited, 0.0))
    out += [depth, oldest]
    out.append(_webhook_family(found.attempts))
    out += _rate_limit_families(found)
    return out


def _webhook_family(attempts: dict[str, repo.AttemptStats]) -> Metric:
    hist = HistogramMetricFamily(
        "signalpost_webhook_attempt_seconds",
        "Webhook delivery attempts by result (success, http_error, error) and their latency.",
        labels=["result"],
    )
    for result, stats in sorted(attempts.items()):
        buckets = [
            (str(bound), float(n))
            for bound, n in zip(repo.LATENCY_BUCKETS, stats.buckets, strict=True)
        ]
        buckets.append(("+Inf", float(stats.count)))
        hist.add_metric([result], buckets, stats.latency_sum)
    return hist


def _rate_limit_families(found: repo.Snapshot) -> list[Metric]:
    count, total = found.rate_limit_waits
    waits = CounterMetricFamily(
        "signalpost_rate_limit_waits", "Messages that waited for a throughput slot."
    )
    waits.add_metric([], count)
    waited = CounterMetricFamily(
        "signalpost_rate_limit_wait_seconds", "Seconds messages waited for throughput slots."
    )
    waited.add_metric([], total)
    backlog = GaugeMetricFamily(
        "signalpost_rate_limit_backlog_seconds",
        "Seconds of queued traffic ahead on the busiest limiter of each kind.",
        labels=["limiter"],
    )
    for kind, seconds in found.rate_limit_backlogs:
        backlog.add_metric([kind], seconds)
    return [waits, waited, backlog]
