"""Prometheus metrics of this process (HTTP requests by route and status) with prometheus-client.

Metrics that describe shared state (messages, the job queue, webhook attempts) are read from the
database at scrape time by `signalpost.metrics`, so they are the same whichever process is scraped.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence

from fastapi.routing import iter_route_contexts
from prometheus_client import CollectorRegistry, Counter
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

UNMATCHED = "unmatched"


class ProcessMetrics:
    """The process's own metrics, in a registry of their own (one per application)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.http_requests = Counter(
            "signalpost_http_requests",
            "HTTP requests answered by this process, by route template, method and status.",
            ["route", "method", "status"],
            registry=self.registry,
        )
        # Label lookups cost more than the increment: children are kept by their labels.
        self._children: dict[tuple[str, str, int], Counter] = {}

    def count_request(self, route: str, method: str, status: int) -> None:
        key = (route, method, status)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = self.http_requests.labels(route, method, str(status))
        child.inc()


class CountRequests:
    """ASGI middleware counting every HTTP request by route template and status, including the
    ones the fast lane answers (it wraps the lane); the route of a request the framework did not
    match is `unmatched`, so unknown paths cannot grow the label set."""

    def __init__(
        self,
        app: ASGIApp,
        metrics: ProcessMetrics,
        lane_paths: Collection[str],
        routes: Callable[[], Sequence[BaseRoute]],
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.lane_paths = frozenset(lane_paths)
        self.routes = routes
        self._templates: dict[int, str] | None = None

    def template(self, route: object) -> str:
        """The full path template of a matched route (routers keep theirs without prefixes)."""
        if self._templates is None:
            self._templates = {}
            for context in iter_route_contexts(self.routes()):
                full = context.path_format or context.path
                if full:
                    self._templates.setdefault(id(context.original_route), full)
        name = self._templates.get(id(route))
        if name is None:
            name = self._templates[id(route)] = getattr(route, "path", None) or UNMATCHED
        return name

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500

        async def send_counted(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_counted)
        finally:
            route = scope.get("route")
            path: str = scope["path"]
            if route is not None:
                name = self.template(route)
            elif path in self.lane_paths:
                name = path
            else:
                name = UNMATCHED
            self.metrics.count_request(name, scope["method"], status)
