"""Organization isolation over every route of the OpenAPI document.

Organization A builds one of everything (profile, auto-response config, numbers, short code,
alphanumeric sender, orders, bulk update, messages, a group MMS, a scheduled message, webhook
deliveries, an opt-out, link clicks, a URL domain, its chaos setting). Then, route by route,
organization B's key tries to read and change A's things: lists must not show them, item routes
must answer 4xx, nothing B does may change what A sees, and no answer to B may carry anything of
A's that B did not put in its own request.

`ROUTES` says, for each route, how B probes it; `ORGLESS` lists the routes that belong to no
organization. `test_every_route_is_covered` fails when the document has a route in neither, so a
new route cannot be added without saying how it is isolated.
"""

from __future__ import annotations

import contextlib
import difflib
import json
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import httpx
import pytest

from signalpost.app import create_app
from signalpost.settings import Settings
from tests.conftest import unique_number
from tests.support.isolation import World, build, call, close_clients, later
from tests.support.receiver import WebhookReceiver
from tests.support.server import RunningServer

Expect = Literal["hidden", "listed", "own", "stream"]


@dataclass(frozen=True)
class Probe:
    """One request B makes. `hidden`: a 4xx (A's thing is not found or not usable by B);
    `listed`: a 200 list without A's things; `own`: B acting on its own behalf (any answer but a
    5xx), which must neither reach A nor show anything of A's; `stream`: a 200 event stream, read
    for `STREAM_SECONDS`, without A's things."""

    method: str
    path: str
    body: dict[str, Any] | None = None
    params: dict[str, str] | None = None
    expect: Expect = "hidden"


# --- how B probes each route ------------------------------------------------------------------

Build = Callable[[World], list[Probe]]

ROUTES: dict[str, Build] = {
    # messages
    "POST /v2/messages": lambda w: [
        Probe("POST", "/v2/messages", {"from": w.number, "to": "+14156669001", "text": "b"}),
        Probe(
            "POST",
            "/v2/messages",
            {"messaging_profile_id": w.profile, "to": "+14156669001", "text": "b"},
        ),
    ],
    "POST /v2/messages/long_code": lambda w: [
        Probe(
            "POST", "/v2/messages/long_code", {"from": w.number, "to": "+14156669002", "text": "b"}
        ),
    ],
    "POST /v2/messages/short_code": lambda w: [
        Probe(
            "POST",
            "/v2/messages/short_code",
            {"from": w.short_code_value, "to": "+14156669003", "text": "b"},
        ),
    ],
    "POST /v2/messages/alphanumeric_sender_id": lambda w: [
        Probe(
            "POST",
            "/v2/messages/alphanumeric_sender_id",
            {
                "from": w.alpha_value,
                "messaging_profile_id": w.profile,
                "to": "+447700900123",
                "text": "b",
            },
        ),
    ],
    "POST /v2/messages/number_pool": lambda w: [
        Probe(
            "POST",
            "/v2/messages/number_pool",
            {"messaging_profile_id": w.profile, "to": "+14156669004", "text": "b"},
        ),
    ],
    "POST /v2/messages/schedule": lambda w: [
        Probe(
            "POST",
            "/v2/messages/schedule",
            {"from": w.number, "to": "+14156669005", "text": "b", "send_at": later()},
        ),
    ],
    "POST /v2/messages/group_mms": lambda w: [
        Probe(
            "POST",
            "/v2/messages/group_mms",
            {"from": w.number, "to": ["+14156669006", "+14156669007"], "text": "b"},
        ),
    ],
    "POST /v2/messages/whatsapp": lambda w: [
        Probe(
            "POST",
            "/v2/messages/whatsapp",
            {
                "from": w.number,
                "to": "+14156669008",
                "whatsapp_message": {"type": "text", "text": {"body": "b"}},
            },
        ),
    ],
    "GET /v2/messages/{message_id}": lambda w: [
        Probe("GET", f"/v2/messages/{w.message}"),
        Probe("GET", f"/v2/messages/{w.scheduled}"),
    ],
    "DELETE /v2/messages/{message_id}": lambda w: [Probe("DELETE", f"/v2/messages/{w.scheduled}")],
    "GET /v2/messages/group/{message_id}": lambda w: [
        Probe("GET", f"/v2/messages/group/{w.group_message}")
    ],
    # profiles
    "GET /v2/messaging_profiles": lambda w: [
        Probe("GET", "/v2/messaging_profiles", expect="listed")
    ],
    "POST /v2/messaging_profiles": lambda w: [
        Probe(
            "POST",
            "/v2/messaging_profiles",
            {"name": f"b-{uuid.uuid4().hex[:6]}", "whitelisted_destinations": ["US"]},
            expect="own",
        ),
        # A profile name is unique per organization, not per server: B may use A's.
        Probe(
            "POST",
            "/v2/messaging_profiles",
            {"name": w.profile_name, "whitelisted_destinations": ["US"]},
            expect="own",
        ),
    ],
    "GET /v2/messaging_profiles/{profile_id}": lambda w: [
        Probe("GET", f"/v2/messaging_profiles/{w.profile}")
    ],
    "PATCH /v2/messaging_profiles/{profile_id}": lambda w: [
        Probe(
            "PATCH",
            f"/v2/messaging_profiles/{w.profile}",
            {"name": "taken over", "webhook_url": "https://b.example/hook"},
        ),
    ],
    "DELETE /v2/messaging_profiles/{profile_id}": lambda w: [
        Probe("DELETE", f"/v2/messaging_profiles/{w.profile}")
    ],
    "POST /v2/messaging_profiles/{profile_id}/actions/regenerate_secret": lambda w: [
        Probe("POST", f"/v2/messaging_profiles/{w.profile}/actions/regenerate_secret", {}),
    ],
    "GET /v2/messaging_profiles/{profile_id}/phone_numbers": lambda w: [
        Probe("GET", f"/v2/messaging_profiles/{w.profile}/phone_numbers"),
    ],
    "GET /v2/messaging_profiles/{profile_id}/short_codes": lambda w: [
        Probe("GET", f"/v2/messaging_profiles/{w.profile}/short_codes"),
    ],
    "GET /v2/messaging_profiles/{profile_id}/alphanumeric_sender_ids": lambda w: [
        Probe("GET", f"/v2/messaging_profiles/{w.profile}/alphanumeric_sender_ids"),
    ],
    "GET /v2/messaging_profiles/{profile_id}/metrics": lambda w: [
        Probe("GET", f"/v2/messaging_profiles/{w.profile}/metrics"),
    ],
    "GET /v2/messaging_profile_metrics": lambda w: [
        Probe("GET", "/v2/messaging_profile_metrics", expect="listed"),
        Probe("GET", "/v2/messaging_profile_metrics", params={"id": w.profile}, expect="listed"),
    ],
    "GET /v2/messaging_profiles/{profile_id}/autoresp_configs": lambda w: [
        Probe("GET", f"/v2/messaging_profiles/{w.profile}/autoresp_configs"),
    ],
    "POST /v2/messaging_profiles/{profile_id}/autoresp_configs": lambda w: [
        Probe(
            "POST",
            f"/v2/messaging_profiles/{w.profile}/autoresp_configs",
            {"op": "start", "keywords": ["BTAKE"], "country_code": "US", "resp_text": "b"},
        ),
    ],
    "GET /v2/messaging_profiles/{profile_id}/autoresp_configs/{autoresp_cfg_id}": lambda w: [
        Probe("GET", f"/v2/messaging_profiles/{w.profile}/autoresp_configs/{w.autoresp}"),
        Probe("GET", f"/v2/messaging_profiles/{w.b_profile}/autoresp_configs/{w.autoresp}"),
    ],
    "PUT /v2/messaging_profiles/{profile_id}/autoresp_configs/{autoresp_cfg_id}": lambda w: [
        Probe(
            "PUT",
            f"/v2/messaging_profiles/{w.profile}/autoresp_configs/{w.autoresp}",
            {"op": "start", "keywords": ["BTAKE"], "country_code": "US", "resp_text": "b"},
        ),
        Probe(
            "PUT",
            f"/v2/messaging_profiles/{w.b_profile}/autoresp_configs/{w.autoresp}",
            {"op": "start", "keywords": ["BTAKE"], "country_code": "US", "resp_text": "b"},
        ),
    ],
    "DELETE /v2/messaging_profiles/{profile_id}/autoresp_configs/{autoresp_cfg_id}": lambda w: [
        Probe("DELETE", f"/v2/messaging_profiles/{w.profile}/autoresp_configs/{w.autoresp}"),
        Probe("DELETE", f"/v2/messaging_profiles/{w.b_profile}/autoresp_configs/{w.autoresp}"),
    ],
    # numbers
    "GET /v2/phone_numbers/messaging": lambda w: [
        Probe("GET", "/v2/phone_numbers/messaging", expect="listed")
    ],
    "GET /v2/phone_numbers/{id}/messaging": lambda w: [
        Probe("GET", f"/v2/phone_numbers/{w.number_id}/messaging"),
        Probe("GET", f"/v2/phone_numbers/{w.number}/messaging"),
    ],
    "PATCH /v2/phone_numbers/{id}/messaging": lambda w: [
        Probe(
            "PATCH",
            f"/v2/phone_numbers/{w.number_id}/messaging",
            {"messaging_profile_id": w.b_profile},
        ),
        Probe("PATCH", f"/v2/phone_numbers/{w.number}/messaging", {"messaging_profile_id": ""}),
    ],
    "GET /v2/messaging_phone_numbers": lambda w: [
        Probe("GET", "/v2/messaging_phone_numbers", expect="listed")
    ],
    "GET /v2/messaging_phone_numbers/{id}": lambda w: [
        Probe("GET", f"/v2/messaging_phone_numbers/{w.number_id}"),
        Probe("GET", f"/v2/messaging_phone_numbers/{w.number}"),
    ],
    "PATCH /v2/messaging_phone_numbers/{id}": lambda w: [
        Probe("PATCH", f"/v2/messaging_phone_numbers/{w.number_id}", {"messaging_profile_id": ""}),
    ],
    "GET /v2/phone_numbers": lambda w: [
        Probe("GET", "/v2/phone_numbers", expect="listed"),
        Probe(
            "GET",
            "/v2/phone_numbers",
            params={"filter[phone_number]": w.number.removeprefix("+")},
            expect="listed",
        ),
    ],
    "GET /v2/phone_numbers/{id}": lambda w: [
        Probe("GET", f"/v2/phone_numbers/{w.number_id}"),
        Probe("GET", f"/v2/phone_numbers/{w.number}"),
    ],
    "GET /v2/mobile_phone_numbers/messaging": lambda w: [
        Probe("GET", "/v2/mobile_phone_numbers/messaging", expect="listed"),
    ],
    "GET /v2/mobile_phone_numbers/{id}/messaging": lambda w: [
        Probe("GET", f"/v2/mobile_phone_numbers/{w.number_id}/messaging"),
    ],
    "GET /v2/number_orders": lambda w: [Probe("GET", "/v2/number_orders", expect="listed")],
    "POST /v2/number_orders": lambda w: [
        # A's number cannot be ordered again by B (nor moved to B).
        Probe("POST", "/v2/number_orders", {"phone_numbers": [{"phone_number": w.number}]}),
        Probe(
            "POST",
            "/v2/number_orders",
            {
                "phone_numbers": [{"phone_number": unique_number()}],
                "messaging_profile_id": w.profile,
            },
        ),
    ],
    "GET /v2/number_orders/{number_order_id}": lambda w: [
        Probe("GET", f"/v2/number_orders/{w.order}")
    ],
    "PATCH /v2/number_orders/{number_order_id}": lambda w: [
        Probe("PATCH", f"/v2/number_orders/{w.order}", {"customer_reference": "taken over"}),
    ],
    "GET /v2/short_codes": lambda w: [Probe("GET", "/v2/short_codes", expect="listed")],
    "GET /v2/short_codes/{id}": lambda w: [Probe("GET", f"/v2/short_codes/{w.short_code}")],
    "PATCH /v2/short_codes/{id}": lambda w: [
        Probe("PATCH", f"/v2/short_codes/{w.short_code}", {"messaging_profile_id": w.b_profile}),
    ],
    "GET /v2/alphanumeric_sender_ids": lambda w: [
        Probe("GET", "/v2/alphanumeric_sender_ids", expect="listed")
    ],
    "POST /v2/alphanumeric_sender_ids": lambda w: [
        Probe(
            "POST",
            "/v2/alphanumeric_sender_ids",
            {"alphanumeric_sender_id": "BTakeover", "messaging_profile_id": w.profile},
        ),
    ],
    "GET /v2/alphanumeric_sender_ids/{id}": lambda w: [
        Probe("GET", f"/v2/alphanumeric_sender_ids/{w.alpha}")
    ],
    "DELETE /v2/alphanumeric_sender_ids/{id}": lambda w: [
        Probe("DELETE", f"/v2/alphanumeric_sender_ids/{w.alpha}")
    ],
    "POST /v2/messaging_numbers/bulk_updates": lambda w: [
        # B may start a bulk update, but A's number must not move (it stays A's, on A's profile).
        Probe(
            "POST",
            "/v2/messaging_numbers/bulk_updates",
            {"messaging_profile_id": w.b_profile, "numbers": [w.number]},
            expect="own",
        ),
    ],
    "GET /v2/messaging_numbers/bulk_updates/{order_id}": lambda w: [
        Probe("GET", f"/v2/messaging_numbers/bulk_updates/{w.bulk}"),
    ],
    "POST /v2/messaging_numbers_bulk_updates": lambda w: [
        Probe(
            "POST",
            "/v2/messaging_numbers_bulk_updates",
            {"messaging_profile_id": "", "numbers": [w.number]},
            expect="own",
        ),
    ],
    "GET /v2/messaging_numbers_bulk_updates/{order_id}": lambda w: [
        Probe("GET", f"/v2/messaging_numbers_bulk_updates/{w.bulk}"),
    ],
    # opt-outs, webhooks, links
    "GET /v2/messaging_optouts": lambda w: [
        Probe("GET", "/v2/messaging_optouts", expect="listed"),
        Probe(
            "GET",
            "/v2/messaging_optouts",
            params={"messaging_profile_id": w.profile},
            expect="listed",
        ),
    ],
    "GET /v2/webhook_deliveries": lambda w: [
        Probe("GET", "/v2/webhook_deliveries", expect="listed")
    ],
    "GET /v2/webhook_deliveries/{delivery_id}": lambda w: [
        Probe("GET", f"/v2/webhook_deliveries/{w.delivery}")
    ],
    "POST /v2/webhook_deliveries/{delivery_id}/redeliver": lambda w: [
        Probe("POST", f"/v2/webhook_deliveries/{w.delivery}/redeliver")
    ],
    "GET /v2/messaging_url_domains": lambda w: [
        Probe("GET", "/v2/messaging_url_domains", expect="listed")
    ],
    "GET /analytics/link_clicks": lambda w: [
        Probe("GET", "/analytics/link_clicks", expect="listed")
    ],
    "GET /analytics/messages/{message_id}/links": lambda w: [
        Probe("GET", f"/analytics/messages/{w.message}/links"),
    ],
    # simulator and inbox
    "GET /simulator/chaos": lambda w: [Probe("GET", "/simulator/chaos", expect="listed")],
    "PUT /simulator/chaos": lambda w: [
        Probe("PUT", "/simulator/chaos", {"extra_latency": 0.25}, expect="own")
    ],
    "POST /simulator/inbound": lambda w: [
        # Stored in B's organization (a number B does not own gets no webhook), never in A's.
        Probe(
            "POST",
            "/simulator/inbound",
            {"from": "+14156669010", "to": w.number, "text": "STOP"},
            expect="own",
        ),
    ],
    "GET /inbox/api/messages": lambda w: [Probe("GET", "/inbox/api/messages", expect="listed")],
    "GET /inbox/api/events": lambda w: [
        # Everything changed since long ago, in B's organization: nothing of A's.
        Probe(
            "GET", "/inbox/api/events", params={"after": "2000-01-01T00:00:00Z"}, expect="stream"
        ),
        Probe("GET", "/inbox/api/events", params={"message": w.message}, expect="stream"),
    ],
    "POST /inbox/api/webhooks/{delivery_id}/redeliver": lambda w: [
        Probe("POST", f"/inbox/api/webhooks/{w.delivery}/redeliver")
    ],
    "GET /inbox/api/messages/{message_id}": lambda w: [
        Probe("GET", f"/inbox/api/messages/{w.message}")
    ],
    "POST /inbox/api/reply": lambda w: [
        Probe(
            "POST",
            "/inbox/api/reply",
            {"from": "+14156669011", "to": w.number, "text": "hi"},
            expect="own",
        ),
    ],
    # the server operator's
    "GET /admin/carriers": lambda w: [Probe("GET", "/admin/carriers")],  # 403 but for the default
}

# Routes of no organization: they are the same for every caller.
ORGLESS = {
    "GET /healthz": "liveness",
    "GET /readyz": "readiness",
    "GET /l/{path}": "a short link's public redirect: whoever has the link follows it",
    "GET /metrics": "the operator's server-wide counts (no ids, numbers or names in them); "
    "SIGNALPOST_METRICS_TOKEN closes it",
}


def _document_routes(tmp_path: Path) -> set[str]:
    app = create_app(Settings(database_url=f"sqlite+aiosqlite:///{tmp_path}/doc.db"))
    return {
        f"{method.upper()} {path}"
        for path, operations in app.openapi()["paths"].items()
        for method in operations
    }


def test_every_route_is_covered(tmp_path: Path) -> None:
    routes = _document_routes(tmp_path)
    uncovered = routes - set(ROUTES) - set(ORGLESS)
    assert not uncovered, f"routes without an isolation probe (add them to ROUTES): {uncovered}"
    stale = (set(ROUTES) | set(ORGLESS)) - routes
    assert not stale, f"probes of routes the document no longer has: {stale}"


@pytest.fixture(scope="module")
def world(server: RunningServer, receiver: WebhookReceiver) -> Iterator[World]:
    yield build(server, receiver)
    close_clients()


# What A sees of its own things: must be the same after anything B does.
A_VIEWS: tuple[Callable[[World], str], ...] = (
    lambda w: f"/v2/messaging_profiles/{w.profile}",
    lambda w: f"/v2/messaging_profiles/{w.profile}/autoresp_configs/{w.autoresp}",
    lambda w: f"/v2/phone_numbers/{w.number_id}/messaging",
    lambda w: f"/v2/number_orders/{w.order}",
    lambda w: f"/v2/short_codes/{w.short_code}",
    lambda w: f"/v2/alphanumeric_sender_ids/{w.alpha}",
    lambda w: f"/v2/messages/{w.message}",
    lambda w: f"/v2/messages/{w.scheduled}",
    lambda w: f"/v2/messaging_numbers/bulk_updates/{w.bulk}",
    lambda w: "/v2/messaging_optouts",
    lambda w: "/v2/messaging_profiles",
    lambda w: "/simulator/chaos",
    lambda w: "/analytics/link_clicks",
)


def _a_sees(server: RunningServer, w: World) -> list[Any]:
    out = []
    for view in A_VIEWS:
        r = call(server, w.a_key, "GET", view(w))
        out.append((view(w), r.status_code, r.json()))
    feed = call(server, w.a_key, "GET", "/inbox/api/messages").json()["data"]
    out.append(sorted(item["id"] for item in feed))
    return out


@pytest.mark.parametrize("route", sorted(ROUTES))
def test_organization_b_cannot_see_or_change_a(
    route: str, server: RunningServer, world: World
) -> None:
    before = _a_sees(server, world)
    for probe in ROUTES[route](world):
        if probe.expect == "stream":
            r = _read_stream(server, world.b_key, probe.path, probe.params)
        else:
            r = call(
                server, world.b_key, probe.method, probe.path, json=probe.body, params=probe.params
            )
        where = f"{probe.method} {probe.path} {probe.body or ''} -> {r.status_code} {r.text[:300]}"
        assert r.status_code < 500, where
        if probe.expect == "hidden":
            assert 400 <= r.status_code < 500 and r.status_code not in (401, 429), where
        elif probe.expect in ("listed", "stream"):
            assert r.status_code == 200, where
        asked = f"{probe.path} {probe.body or ''} {probe.params or ''}"
        leaked = sorted(m for m in world.markers() if m in r.text and m not in asked)
        assert not leaked, f"{where}: shows A's {leaked}"
    if route.split()[0] != "GET":
        after = _a_sees(server, world)
        changed = [(b, a) for b, a in zip(before, after, strict=True) if b != a]
        assert not changed, f"{route} changed what A sees: {_diff(changed)}"


STREAM_SECONDS = 2.0


def _read_stream(
    server: RunningServer, key: str, path: str, params: dict[str, str] | None
) -> httpx.Response:
    """What an event stream sends in its first `STREAM_SECONDS` (it would run for minutes)."""
    chunks: list[bytes] = []
    deadline = time.monotonic() + STREAM_SECONDS
    headers = {"Authorization": f"Bearer {key}"}
    with (
        httpx.Client(base_url=server.base_url, timeout=STREAM_SECONDS) as http,
        http.stream("GET", path, params=params, headers=headers) as r,
    ):
        with contextlib.suppress(httpx.ReadTimeout):
            for chunk in r.iter_raw():
                chunks.append(chunk)
                if time.monotonic() > deadline:
                    break
        status, response_headers = r.status_code, r.headers
    assert any(b"event: ready" in c for c in chunks), chunks
    return httpx.Response(status, headers=response_headers, content=b"".join(chunks))


def _diff(changed: list[tuple[Any, Any]]) -> str:
    lines: list[str] = []
    for before, after in changed:
        lines += difflib.unified_diff(
            json.dumps(before, indent=1, sort_keys=True).splitlines(),
            json.dumps(after, indent=1, sort_keys=True).splitlines(),
            lineterm="",
            n=1,
        )
    return "\n".join(lines)
