"""`create_app(settings)`: routers, error handlers, and the lifespan that migrates and runs workers."""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import inspect
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from fastapi import APIRouter, FastAPI
from starlette.types import ASGIApp, Receive, Scope, Send

from signalpost import __version__, wire
from signalpost.accounts import service as accounts
from signalpost.context import AppContext
from signalpost.kit import migrate
from signalpost.kit.apidocs import install_docs
from signalpost.kit.db import Database
from signalpost.kit.errors import ApiError, install_error_handlers, render
from signalpost.kit.fastlane import FastLane, LaneHandler
from signalpost.kit.foreground import Foreground, TrackRequests
from signalpost.kit.jsonio import JSONResponse
from signalpost.kit.limits import RequestGuard, RequestLimits
from signalpost.kit.metrics import CountRequests, ProcessMetrics
from signalpost.kit.queue import JobKind, Worker, lanes
from signalpost.retention import service as retention
from signalpost.settings import Settings

log = logging.getLogger("signalpost")

# Feature packages: each may have `api.py` with `router` (mounted under /v2), `public_router`
# (mounted at the root, for endpoints of our own) and `fast_routes(ctx)` (kit.fastlane), and
# `jobs.py` with `kinds(ctx)`.
FEATURES = (
    "accounts",
    "profiles",
    "numbers",
    "messages",
    "optouts",
    "webhooks",
    "links",
    "simulator",
    "gateway",
    "inbox",
    "metrics",
)


def _feature_module(feature: str, role: str) -> Any:
    name = f"signalpost.{feature}.{role}"
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name == name:
            return None
        raise


def collect_job_kinds(ctx: AppContext) -> dict[str, JobKind]:
    kinds: dict[str, JobKind] = {}
    for feature in FEATURES:
        module = _feature_module(feature, "jobs")
        if module is not None:
            kinds.update(module.kinds(ctx))
    return kinds


class RequireJSON:
    """Reject request bodies that are not JSON with 415 (code 10014), as Telnyx does."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] in ("POST", "PUT", "PATCH"):
            headers = dict(scope["headers"])
            ctype = headers.get(b"content-type", b"").split(b";")[0].strip().lower()
            has_body = headers.get(b"content-length", b"0") not in (b"0", b"") or (
                b"transfer-encoding" in headers
            )
            path: str = scope["path"]
            if (
                has_body
                and path.startswith("/v2/")
                and not (ctype == b"application/json" or ctype.endswith(b"+json"))
            ):
                response = render(
                    [
                        ApiError(
                            415,
                            "10014",
                            "Unsupported media type",
                            "Request bodies must be JSON (Content-Type: application/json).",
                            should_retry=False,
                        )
                    ]
                )
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


def build_context(settings: Settings) -> AppContext:
    ctx = AppContext(
        settings=settings,
        db=Database(
            settings.database_url,
            listen_url=settings.database_listen_url,
            transaction_pooler=settings.database_transaction_pooler,
        ),
    )
    ctx.job_kinds = collect_job_kinds(ctx)
    return ctx


async def close_resources(ctx: AppContext) -> None:
    """Close what features keep in `ctx.extras` (anything with an async `aclose()` or `close()`)."""
    for resource in list(ctx.extras.values()):
        closer = getattr(resource, "aclose", None) or getattr(resource, "close", None)
        if closer is None or not inspect.iscoroutinefunction(closer):
            continue
        try:
            await closer()
        except Exception:
            log.exception("closing %r failed", resource)


def build_workers(
    ctx: AppContext, count: int, *, before_claim: Callable[[], Awaitable[bool]] | None = None
) -> list[Worker]:
    """`count` workers for each lane of the job kinds (kit.queue.lanes): webhook deliveries, which
    wait on receivers outside, are claimed and run apart from sends and receipts."""
    settings = ctx.settings
    return [
        Worker(
            ctx.db,
            kinds,
            poll_interval=settings.worker_poll_interval,
            listening_poll_interval=max(
                settings.worker_listening_poll_interval, settings.worker_poll_interval
            ),
            concurrency=settings.worker_concurrency,
            lease=settings.job_lease_seconds,
            linger=settings.worker_linger,
            before_claim=before_claim,
        )
        for kinds in lanes(ctx.job_kinds).values()
        for _ in range(count)
    ]


async def prepare(ctx: AppContext) -> accounts.Bootstrap:
    """Migrate the schema and make sure the default organization and keys exist."""
    await migrate.upgrade(ctx.db)
    async with ctx.db.transaction() as uow:
        await migrate.one_at_a_time(uow)  # other processes may be starting on this database
        return await accounts.bootstrap(uow, ctx.settings.api_key, ctx.settings.signing_key_pair)


class _Application(FastAPI):
    """FastAPI with ASGI layers wrapped around its whole middleware stack (`outer`, innermost
    first), where `add_middleware` would put them inside the framework's own error handling."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.outer: list[Callable[[ASGIApp], ASGIApp]] = []

    def build_middleware_stack(self) -> ASGIApp:
        app = super().build_middleware_stack()
        for wrap in self.outer:
            app = wrap(app)
        return app


def _wrap_outer(
    app: _Application,
    ctx: AppContext,
    lanes: dict[tuple[str, str], LaneHandler],
    foreground: Foreground,
) -> None:
    """The layers around the framework's whole middleware stack, innermost first: the lane
    answering before any of the framework's layers run (kit.fastlane), the requests in flight,
    the request limits, and outermost the metrics' request counter (refused requests count too)."""
    settings = ctx.settings
    if lanes and settings.fast_lane:
        app.outer.append(lambda inner: FastLane(inner, routes=lanes))
    app.outer.append(lambda inner: TrackRequests(inner, foreground))
    limits = RequestLimits(
        max_body_bytes=settings.max_body_bytes,
        max_header_bytes=settings.max_header_bytes,
        max_headers=settings.max_headers,
        body_timeout=settings.request_body_timeout,
    )
    app.outer.append(lambda inner: RequestGuard(inner, limits))
    process_metrics = ctx.extras["process_metrics"] = ProcessMetrics()
    lane_paths = {path for _, path in lanes}
    app.outer.append(
        lambda inner: CountRequests(inner, process_metrics, lane_paths, lambda: app.routes)
    )


def create_app(settings: Settings, *, run_workers: bool | None = None) -> FastAPI:
    """The ASGI application. Workers run in-process unless `settings.workers` is 0."""
    ctx = build_context(settings)
    workers_enabled = settings.workers > 0 if run_workers is None else run_workers
    foreground = Foreground()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        boot = await prepare(ctx)
        app.state.bootstrap = boot
        on_ready = getattr(app.state, "on_ready", None)
        if on_ready is not None:
            on_ready(boot)
        workers = build_workers(
            ctx,
            settings.workers if workers_enabled else 0,
            before_claim=foreground.wait_quiet,  # requests first (kit.foreground)
        )
        if workers:
            from signalpost.carriers import start_carriers

            await start_carriers(ctx)  # this process takes part in holding the SMPP binds
        tasks = [asyncio.create_task(w.run()) for w in workers]
        stop_sweep = asyncio.Event()
        if workers:
            tasks.append(asyncio.create_task(retention.sweep_forever(ctx.db, settings, stop_sweep)))
        try:
            yield
        finally:
            for w in workers:
                w.stop()
            stop_sweep.set()
            if tasks:
                await asyncio.wait(tasks, timeout=10)
            await close_resources(ctx)
            await ctx.db.dispose()

    app = _Application(
        title="signalpost",
        version=__version__,
        description="A self-hosted messaging server that speaks the Telnyx Messaging API v2.",
        default_response_class=JSONResponse,
        lifespan=lifespan,
        docs_url=None,  # served by kit.apidocs, from local assets
        redoc_url=None,
        telemetry={
            "tracing": settings.opentelemetry,
            "metrics": settings.opentelemetry,
            "logs": settings.opentelemetry,
        },
    )
    app.state.ctx = ctx
    install_error_handlers(app)
    install_docs(app, wire.model_for)
    app.add_middleware(RequireJSON)

    v2 = APIRouter(prefix="/v2")
    lanes: dict[tuple[str, str], LaneHandler] = {}
    for feature in FEATURES:
        module = _feature_module(feature, "api")
        if module is None:
            continue
        if hasattr(module, "fast_routes"):
            lanes.update(module.fast_routes(ctx))
        if hasattr(module, "router"):
            v2.include_router(module.router)
        if hasattr(module, "public_router"):
            app.include_router(module.public_router)
    app.include_router(v2)
    _wrap_outer(app, ctx, lanes, foreground)

    @app.get("/healthz", tags=["health"])
    async def healthz() -> dict[str, str]:
        """The process is alive."""
        return {"status": "ok"}

    @app.get("/readyz", tags=["health"])
    async def readyz() -> JSONResponse:
        """The database answers and its schema is at the newest migration."""
        try:
            current = await migrate.is_current(ctx.db)
        except Exception as exc:
            return JSONResponse({"status": "unavailable", "detail": str(exc)}, status_code=503)
        if not current:
            return JSONResponse(
                {"status": "unavailable", "detail": "migrations pending"}, status_code=503
            )
        return JSONResponse({"status": "ok"})

    return app
