"""Organization A's world for the isolation test (tests/integration/test_org_isolation.py): one of
everything A can own, made through the API where it can be and directly in the database where only
the CLI makes it."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import httpx
from sqlalchemy import func, insert, select

from signalpost.context import AppContext
from signalpost.kit.clock import iso, utcnow
from signalpost.models import link_clicks, messages, short_links, url_domains, webhook_events
from signalpost.numbers import service as numbers
from tests.conftest import sdk_client, unique_number
from tests.support.messaging import FINAL, wait_final
from tests.support.receiver import WebhookReceiver
from tests.support.server import RunningServer
from tests.support.wait import wait_until


@dataclass
class World:
    """What A made (ids and values B must never see) and the two keys."""

    a_key: str
    b_key: str
    ids: dict[str, str] = field(default_factory=dict)
    b_profile: str = ""  # B's own profile (not a marker)
    org_id: str = ""  # A's organization

    def __getattr__(self, name: str) -> str:
        try:
            return self.ids[name]
        except KeyError:
            raise AttributeError(name) from None

    def markers(self) -> set[str]:
        return {v for v in self.ids.values() if len(v) >= 6}


def later() -> str:
    return iso(utcnow() + timedelta(hours=2))


def call(server: RunningServer, key: str, method: str, path: str, **kw: Any) -> httpx.Response:
    return httpx.request(
        method,
        f"{server.base_url}{path}",
        headers={"Authorization": f"Bearer {key}"},
        timeout=30,
        **kw,
    )


def _ok(r: httpx.Response) -> Any:
    assert r.status_code < 300, (r.request.method, r.request.url, r.status_code, r.text)
    return r.json()["data"]


def _direct_rows(server: RunningServer, org_id: str, w: World) -> None:
    """What the API cannot make: a short code (the CLI's), a URL domain, a link with a click."""
    code = f"{uuid.uuid4().int % 90000 + 10000}"
    domain = f"a-{uuid.uuid4().hex[:8]}.example"
    link = f"A{uuid.uuid4().hex[:9]}"

    async def go(ctx: AppContext) -> str:
        now = utcnow()
        async with ctx.db.transaction() as uow:
            row = await numbers.add_short_code(uow, org_id, code, profile_id=w.profile)
            await uow.conn.execute(
                insert(url_domains).values(
                    id=str(uuid.uuid4()), organization_id=org_id, url_domain=domain, created_at=now
                )
            )
            await uow.conn.execute(
                insert(short_links).values(
                    code=link,
                    organization_id=org_id,
                    message_id=w.message,
                    recipient="+14156669100",
                    original_url=f"https://{domain}/secret-path",
                    domain=domain,
                    short_url=f"https://{domain}/{link}",
                    created_at=now,
                )
            )
            await uow.conn.execute(
                insert(link_clicks).values(
                    id=str(uuid.uuid4()), code=link, clicked_at=now, is_bot=False
                )
            )
            return str(row["id"])

    w.ids["short_code"] = server.run(go)
    w.ids.update(short_code_value=code, domain=domain, link=link)


def build(server: RunningServer, receiver: WebhookReceiver) -> World:
    tag = uuid.uuid4().hex[:8]
    a_org, a_key = server.new_organization(f"iso-a-{tag}")
    _, b_key = server.new_organization(f"iso-b-{tag}")
    w = World(a_key, b_key, org_id=a_org.id)
    w.ids["org"] = a_org.id
    a = lambda method, path, **kw: _ok(call(server, a_key, method, path, **kw))  # noqa: E731
    w.ids["profile_name"] = f"A profile {tag}"
    w.ids["profile"] = a(
        "POST",
        "/v2/messaging_profiles",
        json={
            "name": w.profile_name,
            "whitelisted_destinations": ["US", "GB"],
            "webhook_url": receiver.url(f"/a-{tag}"),
        },
    )["id"]
    w.b_profile = _ok(
        call(
            server,
            b_key,
            "POST",
            "/v2/messaging_profiles",
            json={"name": f"B {tag}", "whitelisted_destinations": ["US"]},
        )
    )["id"]
    w.ids["autoresp"] = a(
        "POST",
        f"/v2/messaging_profiles/{w.profile}/autoresp_configs",
        json={
            "op": "start",
            "keywords": [f"AKEY{tag[:4].upper()}"],
            "country_code": "US",
            "resp_text": f"A reply {tag}",
        },
    )["id"]
    w.ids["number"] = unique_number()
    w.ids["order"] = a(
        "POST",
        "/v2/number_orders",
        json={"phone_numbers": [{"phone_number": w.number}], "messaging_profile_id": w.profile},
    )["id"]
    w.ids["number_id"] = a("GET", f"/v2/phone_numbers/{w.number}/messaging")["id"]
    w.ids["alpha_value"] = f"A{tag[:7]}"
    w.ids["alpha"] = a(
        "POST",
        "/v2/alphanumeric_sender_ids",
        json={"alphanumeric_sender_id": w.alpha_value, "messaging_profile_id": w.profile},
    )["id"]
    _messages(server, w, a, tag)
    _direct_rows(server, a_org.id, w)
    return w


def _unsettled(server: RunningServer, w: World) -> int:
    """A's messages not final yet (the scheduled one aside) and webhook events still pending."""

    async def go(ctx: AppContext) -> int:
        async with ctx.db.transaction() as uow:
            m, e = messages.c, webhook_events.c
            open_messages = select(func.count()).where(
                m.organization_id == w.org_id,
                m.direction == "outbound",
                m.to_status.not_in(FINAL),
                m.id != w.scheduled,
            )
            open_events = select(func.count()).where(
                e.organization_id == w.org_id, e.status == "pending"
            )
            return int((await uow.conn.execute(open_messages)).scalar_one()) + int(
                (await uow.conn.execute(open_events)).scalar_one()
            )

    return server.run(go)


def _messages(server: RunningServer, w: World, a: Callable[..., Any], tag: str) -> None:
    """A's messages (sent, group, scheduled), a bulk update, an opt-out, chaos, deliveries."""
    w.ids["text"] = f"A secret text {tag}"
    w.ids["message"] = a(
        "POST", "/v2/messages", json={"from": w.number, "to": "+14156669200", "text": w.text}
    )["id"]
    w.ids["group_message"] = a(
        "POST",
        "/v2/messages/group_mms",
        json={"from": w.number, "to": ["+14156669201", "+14156669202"], "text": f"A group {tag}"},
    )["id"]
    w.ids["scheduled"] = a(
        "POST",
        "/v2/messages/schedule",
        json={
            "from": w.number,
            "to": "+14156669203",
            "text": f"A later {tag}",
            "send_at": later(),
        },
    )["id"]
    w.ids["bulk"] = a(
        "POST",
        "/v2/messaging_numbers/bulk_updates",
        json={"messaging_profile_id": w.profile, "numbers": [w.number]},
    )["order_id"]
    w.ids["handset"] = "+14156669299"
    a("POST", "/simulator/inbound", json={"from": w.handset, "to": w.number, "text": "STOP"})
    w.ids["chaos_latency"] = "0.0137"
    a("PUT", "/simulator/chaos", json={"extra_latency": 0.0137})
    a_client = sdk_client(server, w.a_key)
    wait_final(a_client, w.message)
    a_client.close()
    # Everything A set going has finished (numbers' health and the bulk update stay as they are).
    bulk = f"/v2/messaging_numbers/bulk_updates/{w.bulk}"
    wait_until(lambda: not a("GET", bulk)["pending"], 20)
    wait_until(lambda: _unsettled(server, w) == 0, 20)
    delivered = {"filter[status][eq]": "delivered"}
    deliveries = wait_until(lambda: a("GET", "/v2/webhook_deliveries", params=delivered), 20)
    w.ids["delivery"] = deliveries[0]["id"]
