"""Link shortening and click tracking end to end: a profile with `url_shortener_settings`, sends through
the official SDK, clicks with a plain HTTP client (no redirect following), signed link-click webhooks
verified with `client.webhooks.unwrap`, and the analytics endpoints."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import telnyx
from telnyx import Telnyx
from telnyx.types import ReplacedLinkClickWebhookEvent
from typer.testing import CliRunner

from signalpost.cli import app as cli_app
from signalpost.context import AppContext
from signalpost.links import detect
from signalpost.links import service as links
from signalpost.links.service import CODE_LENGTH
from tests.conftest import Account, unique_number
from tests.support.messaging import Sender, events_for, make_sender
from tests.support.receiver import Received, WebhookReceiver
from tests.support.server import RunningServer
from tests.support.wait import wait_until

HUMAN_UA = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1"
)
IMESSAGE_PREVIEW_UA = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_11_1) AppleWebKit/601.2.4 (KHTML, like Gecko) "
    "Version/9.0.1 Safari/601.2.4 facebookexternalhit/1.1 Facebot Twitterbot/1.0"
)


@pytest.fixture
def web(server: RunningServer) -> Iterator[httpx.Client]:
    """A browser-like client that does not follow redirects."""
    with httpx.Client(
        base_url=server.base_url, follow_redirects=False, headers={"User-Agent": HUMAN_UA}
    ) as c:
        yield c


def own_domain(server: RunningServer) -> str:
    return server.base_url.split("://", 1)[1]


def add_domain(server: RunningServer, name: str, org_id: str | None = None) -> None:
    async def go(ctx: AppContext) -> None:
        async with ctx.db.transaction() as uow:
            await links.add_domain(uow, name, organization_id=org_id)

    server.run(go)


def shortener(domain: str, **fields: Any) -> dict[str, Any]:
    return {
        "url_shortener_settings": {
            "domain": domain,
            "prefix": "",
            "replace_blacklist_only": False,
            "send_webhooks": True,
            **fields,
        }
    }


def short_links_in(text: str, base: str) -> list[str]:
    return [link.url for link in detect.find_links(text) if link.url.startswith(base)]


def click_hooks(received: list[Received], path: str, message_id: str) -> list[Received]:
    out = []
    for r in received:
        if r.path != path:
            continue
        data = r.json().get("data", {})
        if data.get("record_type") == "link_clicked" and data.get("message_id") == message_id:
            out.append(r)
    return out


def analytics(server: RunningServer, account: Account, path: str, **params: str) -> httpx.Response:
    return httpx.get(
        f"{server.base_url}{path}",
        params=params,
        headers={"Authorization": f"Bearer {account.api_key}"},
    )


def link_click_events(account: Account) -> list[Any]:
    """The organization's link-click webhook events (queued, delivered or failed)."""
    return list(account.client.webhook_deliveries.list(filter={"event_type": "message.link_click"}))


def _error(exc: telnyx.APIStatusError) -> dict[str, Any]:
    body = exc.body
    assert isinstance(body, dict)
    return body["errors"][0]  # type: ignore[no-any-return]


# --- domains --------------------------------------------------------------------------------------


def test_url_domains_lists_own_host_first_and_scopes_configured_ones(
    server: RunningServer, account: Account, other_account: Account
) -> None:
    shared = f"shared-{uuid.uuid4().hex[:8]}.example"
    private = f"private-{uuid.uuid4().hex[:8]}.example"
    add_domain(server, shared)
    add_domain(server, private, account.org.id)

    mine = list(account.client.messaging_url_domains.list(page_size=1))
    names = [d.url_domain for d in mine]
    assert names[0] == own_domain(server)
    assert shared in names and private in names
    assert all(d.record_type == "messaging_url_domain" and d.id and d.use_case for d in mine)
    assert len({d.id for d in mine}) == len(mine)

    theirs = [d.url_domain for d in other_account.client.messaging_url_domains.list()]
    assert theirs[0] == own_domain(server)
    assert shared in theirs and private not in theirs


def test_profile_domain_must_be_available(
    server: RunningServer, account: Account, other_account: Account
) -> None:
    private = f"mine-{uuid.uuid4().hex[:8]}.example"
    add_domain(server, private, account.org.id)
    client, other = account.client, other_account.client

    with pytest.raises(telnyx.BadRequestError) as info:
        client.messaging_profiles.create(
            name="no such domain",
            whitelisted_destinations=["US"],
            **shortener("unknown.example"),
        )
    err = _error(info.value)
    assert err["code"] == "10015"
    assert err["source"]["pointer"] == "/url_shortener_settings/domain"

    with pytest.raises(telnyx.BadRequestError) as info:
        other.messaging_profiles.create(
            name="someone else's domain", whitelisted_destinations=["US"], **shortener(private)
        )
    assert _error(info.value)["source"]["pointer"] == "/url_shortener_settings/domain"

    ok = client.messaging_profiles.create(
        name="own domain", whitelisted_destinations=["US"], **shortener(private)
    ).data
    assert ok is not None and ok.url_shortener_settings is not None
    assert ok.url_shortener_settings.domain == private
    builtin = other.messaging_profiles.create(
        name="built in", whitelisted_destinations=["US"], **shortener(own_domain(server))
    ).data
    assert builtin is not None and builtin.id

    with pytest.raises(telnyx.BadRequestError) as info:
        other.messaging_profiles.update(builtin.id, **shortener(private))  # type: ignore[arg-type]
    assert _error(info.value)["source"]["pointer"] == "/url_shortener_settings/domain"


def test_cli_adds_lists_and_removes_domains(server: RunningServer, account: Account) -> None:
    name = f"cli-{uuid.uuid4().hex[:8]}.example"
    db = ["--database-url", server.settings.database_url]
    runner = CliRunner()
    added = runner.invoke(cli_app, ["links", "domains", "add", name, "--org", account.org.id, *db])
    assert added.exit_code == 0, added.output
    assert f"https://{name}" in added.output
    again = runner.invoke(cli_app, ["links", "domains", "add", name, "--org", account.org.id, *db])
    assert again.exit_code != 0
    listed = runner.invoke(cli_app, ["links", "domains", "list", *db])
    assert listed.exit_code == 0 and name in listed.output
    assert name in [d.url_domain for d in account.client.messaging_url_domains.list()]
    removed = runner.invoke(cli_app, ["links", "domains", "remove", name, *db])
    assert removed.exit_code == 0, removed.output
    assert name not in [d.url_domain for d in account.client.messaging_url_domains.list()]
    bad = runner.invoke(cli_app, ["links", "domains", "add", "not a domain", *db])
    assert bad.exit_code == 2


# --- sending and clicking ---------------------------------------------------------------------------


@pytest.fixture
def sender(server: RunningServer, client: Telnyx, receiver: WebhookReceiver) -> Sender:
    return make_sender(client, receiver, unique_number(), **shortener(own_domain(server)))


def test_send_shortens_links_and_clicks_fire_signed_webhooks(
    server: RunningServer,
    account: Account,
    client: Telnyx,
    sender: Sender,
    receiver: WebhookReceiver,
    web: httpx.Client,
) -> None:
    first = "https://example.com/offers/" + "x" * 120 + "?utm_source=sms&id=42"
    second = "https://en.wikipedia.org/wiki/Foo_(bar)"
    text = f"Deal: {first}, details ({second}). Again: {first}!"
    assert len(text) > 160  # two parts before shortening

    msg = client.messages.send(from_=sender.number, to="+13125550101", text=text).data
    assert msg is not None and msg.id and msg.text is not None
    base = server.base_url + "/l/"
    shorts = short_links_in(msg.text, base)
    assert len(shorts) == 3 and shorts[0] == shorts[2] != shorts[1]
    assert msg.text == f"Deal: {shorts[0]}, details ({shorts[1]}). Again: {shorts[0]}!"
    assert all(len(s) == len(base) + CODE_LENGTH for s in shorts)
    assert msg.num_chars == len(msg.text) and msg.parts == 1 and msg.encoding == "GSM-7"
    stored = client.messages.retrieve(msg.id).data
    assert stored is not None and stored.text == msg.text and stored.parts == 1

    for short, original in ((shorts[0], first), (shorts[1], second)):
        resp = web.get(urlsplit(short).path)
        assert resp.status_code == 302
        assert resp.headers["location"] == original
        assert resp.headers["cache-control"] == "no-store"

    got = receiver.wait_for(lambda rs: len(click_hooks(rs, sender.hook_path, msg.id or "")) >= 2)
    hooks = click_hooks(got, sender.hook_path, msg.id)
    assert len(hooks) == 2
    urls = []
    for r in hooks:
        event = client.webhooks.unwrap(r.body.decode(), headers=r.headers)
        assert isinstance(event, ReplacedLinkClickWebhookEvent) and event.data is not None
        assert event.data.message_id == msg.id and event.data.time_clicked is not None
        body = r.json()
        data = body["data"]
        assert data["record_type"] == "link_clicked"
        assert data["event_type"] == "message.link_click"
        assert data["message_id"] == msg.id
        assert data["to"] == "+13125550101"
        assert data["time_clicked"].endswith("Z")
        assert body["meta"]["attempt"] == 1
        assert body["meta"]["delivered_to"] == receiver.url(sender.hook_path)
        urls.append(data["url"])
    assert sorted(urls) == sorted([first, second])
    # Message webhooks carry the text as submitted (as with smart encoding); the API shows the
    # text as sent to the handset.
    sent = receiver.wait_for(lambda rs: len(events_for(rs, msg.id or "")) >= 1)
    assert events_for(sent, msg.id)[0]["data"]["payload"]["text"] == text

    listed = analytics(server, account, f"/analytics/messages/{msg.id}/links")
    assert listed.status_code == 200
    items = {i["url"]: i for i in listed.json()["data"]}
    assert set(items) == {first, second}
    assert items[first]["short_url"] == shorts[0] and items[first]["clicks"] == 1
    assert items[second]["to"] == "+13125550101" and items[second]["bot_clicks"] == 0


def test_replace_blacklist_only(
    server: RunningServer, client: Telnyx, receiver: WebhookReceiver
) -> None:
    s = make_sender(
        client,
        receiver,
        unique_number(),
        **shortener(own_domain(server), replace_blacklist_only=True),
    )
    text = (
        "Ours https://example.com/keep and theirs https://bit.ly/3abcDEF and http://TinyURL.com/y7"
    )
    msg = client.messages.send(from_=s.number, to="+13125550102", text=text).data
    assert msg is not None and msg.text is not None
    shorts = short_links_in(msg.text, server.base_url + "/l/")
    assert len(shorts) == 2
    assert msg.text == f"Ours https://example.com/keep and theirs {shorts[0]} and {shorts[1]}"


def test_no_shortener_leaves_text_alone(client: Telnyx, receiver: WebhookReceiver) -> None:
    s = make_sender(client, receiver, unique_number())
    text = "Plain https://example.com/a"
    msg = client.messages.send(from_=s.number, to="+13125550103", text=text).data
    assert msg is not None and msg.text == text


def test_prefix_and_link_domain_by_host_header(
    server: RunningServer, account: Account, receiver: WebhookReceiver
) -> None:
    domain = f"go-{uuid.uuid4().hex[:8]}.example"
    add_domain(server, domain, account.org.id)
    s = make_sender(account.client, receiver, unique_number(), **shortener(domain, prefix="promo/"))
    msg = account.client.messages.send(
        from_=s.number, to="+13125550104", text="Shop https://shop.example/sale"
    ).data
    assert msg is not None and msg.text is not None
    (short,) = short_links_in(msg.text, f"https://{domain}/promo/")
    path = urlsplit(short).path

    with httpx.Client(base_url=server.base_url, follow_redirects=False) as c:
        on_domain = {"Host": domain, "User-Agent": HUMAN_UA}
        resp = c.get(path, headers=on_domain)
        assert resp.status_code == 302 and resp.headers["location"] == "https://shop.example/sale"
        # Every other route still answers on a link domain.
        assert c.get("/healthz", headers=on_domain).json() == {"status": "ok"}
        assert c.get("/openapi.json", headers=on_domain).status_code == 200
        assert c.get("/v2/messaging_url_domains", headers=on_domain).status_code == 401
        # An unknown path on the link domain is the not-found page.
        missing = c.get("/promo/" + "Z" * CODE_LENGTH, headers=on_domain)
        assert missing.status_code == 404 and "text/html" in missing.headers["content-type"]
        # A wrong prefix does not resolve.
        assert c.get("/other/" + path.rsplit("/", 1)[1], headers=on_domain).status_code == 404
        # On the server's own host, root paths are not short links (only /l/ is).
        own = c.get(path)
        assert own.status_code == 404 and own.json()["errors"][0]["code"] == "10005"
        # A host that is no link domain keeps the usual JSON 404.
        stranger = c.get("/nothing-here", headers={"Host": "stranger.example"})
        assert stranger.status_code == 404 and stranger.json()["errors"][0]["code"] == "10005"

    receiver.wait_for(lambda rs: len(click_hooks(rs, s.hook_path, msg.id or "")) == 1)


def test_unknown_code_is_a_404_page(web: httpx.Client) -> None:
    for path in ("/l/" + "A" * CODE_LENGTH, "/l/short", "/l/", "/l/" + "é" * CODE_LENGTH):
        resp = web.get(path)
        assert resp.status_code == 404, path
        assert "location" not in resp.headers
        assert "text/html" in resp.headers["content-type"]
        assert "Link not found" in resp.text


def test_bot_click_is_recorded_but_fires_no_webhook(
    server: RunningServer,
    account: Account,
    sender: Sender,
    receiver: WebhookReceiver,
    web: httpx.Client,
) -> None:
    msg = account.client.messages.send(
        from_=sender.number, to="+13125550105", text="Look https://example.com/preview"
    ).data
    assert msg is not None and msg.id and msg.text is not None
    (short,) = short_links_in(msg.text, server.base_url + "/l/")
    path = urlsplit(short).path

    bot = web.get(path, headers={"User-Agent": IMESSAGE_PREVIEW_UA})
    assert bot.status_code == 302 and bot.headers["location"] == "https://example.com/preview"
    human = web.get(path, headers={"X-Probe": "1"})
    assert human.status_code == 302

    receiver.wait_for(lambda rs: len(click_hooks(rs, sender.hook_path, msg.id or "")) >= 1)

    def clicks() -> list[dict[str, Any]] | None:
        r = analytics(server, account, "/analytics/link_clicks", **{"filter[message_id]": msg.id})
        data: list[dict[str, Any]] = r.json()["data"]
        return data if len(data) == 2 else None

    recorded = wait_until(clicks)
    flags = {c["user_agent"]: c["is_bot"] for c in recorded}
    assert flags == {IMESSAGE_PREVIEW_UA: True, HUMAN_UA: False}
    assert all(
        c["ip"] == "127.0.0.1" and c["url"] == "https://example.com/preview" for c in recorded
    )
    # The person's click queued a webhook; the bot's did not.
    assert len(link_click_events(account)) == 1
    assert len(click_hooks(receiver.received, sender.hook_path, msg.id)) == 1
    bots = analytics(server, account, "/analytics/link_clicks", **{"filter[is_bot]": "true"}).json()
    assert [c["user_agent"] for c in bots["data"]] == [IMESSAGE_PREVIEW_UA]
    assert bots["meta"]["total_results"] == 1
    bad = analytics(server, account, "/analytics/link_clicks", **{"filter[is_bot]": "maybe"})
    assert bad.status_code == 400
    assert bad.json()["errors"][0]["source"]["parameter"] == "filter[is_bot]"


def test_send_webhooks_off_records_clicks_quietly(
    server: RunningServer, account: Account, receiver: WebhookReceiver, web: httpx.Client
) -> None:
    s = make_sender(
        account.client,
        receiver,
        unique_number(),
        **shortener(own_domain(server), send_webhooks=False),
    )
    msg = account.client.messages.send(
        from_=s.number, to="+13125550106", text="https://example.com/quiet"
    ).data
    assert msg is not None and msg.id and msg.text is not None
    assert web.get(urlsplit(msg.text).path).status_code == 302
    # A click's webhook is queued in the click's own transaction, before the redirect answers.
    assert link_click_events(account) == []
    links_of = analytics(server, account, f"/analytics/messages/{msg.id}/links").json()["data"]
    assert links_of[0]["clicks"] == 1 and links_of[0]["send_webhooks"] is False


def test_codes_and_clicks_are_isolated_by_organization(
    server: RunningServer,
    account: Account,
    other_account: Account,
    sender: Sender,
    receiver: WebhookReceiver,
    web: httpx.Client,
) -> None:
    theirs = make_sender(
        other_account.client, receiver, unique_number(), **shortener(own_domain(server))
    )
    mine = account.client.messages.send(
        from_=sender.number, to="+13125550108", text="Same https://example.com/same"
    ).data
    other = other_account.client.messages.send(
        from_=theirs.number, to="+13125550108", text="Same https://example.com/same"
    ).data
    assert mine is not None and other is not None and mine.text and other.text and mine.id
    # The same URL to the same recipient gets a code per organization and message.
    assert mine.text != other.text

    (short,) = short_links_in(mine.text, server.base_url + "/l/")
    assert web.get(urlsplit(short).path).status_code == 302
    receiver.wait_for(lambda rs: len(click_hooks(rs, sender.hook_path, mine.id or "")) == 1)
    assert click_hooks(receiver.received, theirs.hook_path, mine.id) == []

    assert (
        analytics(server, other_account, f"/analytics/messages/{mine.id}/links").status_code == 404
    )
    assert analytics(server, account, f"/analytics/messages/{mine.id}/links").status_code == 200
    seen = analytics(
        server, other_account, "/analytics/link_clicks", **{"filter[message_id]": mine.id}
    ).json()
    assert seen["data"] == [] and seen["meta"]["total_results"] == 0
    assert analytics(server, account, "/analytics/link_clicks").json()["meta"]["total_results"] >= 1
    unauthenticated = httpx.get(f"{server.base_url}/analytics/link_clicks")
    assert unauthenticated.status_code == 401
