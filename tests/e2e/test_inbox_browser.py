"""The web inbox in a real browser: Playwright for Python driving the system's Chromium (Debian's
`chromium` package; Playwright's own browser download is never used).

Log in, watch messages go live over server-sent events (no polling), search and filter, follow a
conversation, preview MMS media, redeliver a webhook, and use it all at 390 px wide and in dark
mode. Skipped (visibly) where no Chromium is installed, but never in CI: there a missing browser
fails the run. Set SIGNALPOST_SCREENSHOT_DIR to keep screenshots of each page.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, expect, sync_playwright
from telnyx import Telnyx

from signalpost.accounts import repository as accounts_repo
from signalpost.accounts import service as accounts
from signalpost.context import AppContext
from signalpost.inbox.live import KEY_CHECK_SECONDS
from signalpost.kit.clock import utcnow
from tests.conftest import Account, unique_number
from tests.support.images import png
from tests.support.media_server import MediaServer
from tests.support.messaging import Sender, make_sender, wait_final
from tests.support.receiver import WebhookReceiver
from tests.support.server import RunningServer
from tests.support.wait import wait_until

CHROMIUM = next(
    (p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None
)
if CHROMIUM is None and os.environ.get("CI"):
    raise RuntimeError("CI must run the browser tests: install Debian's chromium package")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no chromium installed")

TIMEOUT_MS = 20_000
expect.set_options(timeout=TIMEOUT_MS)
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}


@pytest.fixture(scope="module")
def playwright(server: RunningServer) -> Iterator[Playwright]:
    """Playwright's sync API runs an event loop on this thread while it is started, which the
    database fixtures' `asyncio.run` cannot run beside: it lives inside one server's lifetime."""
    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    assert CHROMIUM is not None
    b = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
    yield b
    b.close()


@pytest.fixture(scope="module")
def media() -> Iterator[MediaServer]:
    m = MediaServer().start()
    yield m
    m.stop()


class Inbox:
    """Opens pages of the inbox, logged in as one organization, in fresh browser contexts."""

    def __init__(self, browser: Browser, server: RunningServer, account: Account) -> None:
        self.browser = browser
        self.server = server
        self.account = account
        self.contexts: list[BrowserContext] = []

    def open(
        self, path: str = "/inbox", *, viewport: dict[str, int] = DESKTOP, scheme: Any = "light"
    ) -> Page:
        context = self.browser.new_context(viewport=viewport, color_scheme=scheme)  # type: ignore[arg-type]
        context.set_default_timeout(TIMEOUT_MS)
        self.contexts.append(context)
        page = context.new_page()
        page.goto(f"{self.server.base_url}{path}")
        if page.url.split("?")[0].endswith("/inbox/login"):
            page.fill("#api_key", self.account.api_key)
            page.click("form button[type=submit]")
            page.wait_for_url(lambda url: "/inbox/login" not in url)
        if page.locator("#live").count():
            expect(page.locator("#live")).to_have_text("live")
        return page

    def close(self) -> None:
        for c in self.contexts:
            c.close()


@pytest.fixture
def inbox(browser: Browser, server: RunningServer, account: Account) -> Iterator[Inbox]:
    i = Inbox(browser, server, account)
    yield i
    i.close()


def screenshot(page: Page, name: str) -> None:
    out = os.environ.get("SIGNALPOST_SCREENSHOT_DIR")
    if out:
        Path(out).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(out) / name), full_page=True)


def send(client: Telnyx, sender: Sender, to: str, text: str) -> str:
    msg = client.messages.send(from_=sender.number, to=to, text=text).data
    assert msg is not None and msg.id
    return msg.id


def test_login_live_updates_and_writing_as_a_handset(
    server: RunningServer, inbox: Inbox, account: Account, client: Telnyx, sender: Sender
) -> None:
    page = inbox.open("/")  # the front door leads to the inbox, through the login
    assert page.url == f"{server.base_url}/inbox"
    cookies = page.context.cookies()
    assert [c["httpOnly"] for c in cookies if c["name"] == "signalpost_inbox_key"] == [True]
    assert account.api_key not in page.evaluate("document.cookie")

    # A message sent through the API shows up and reaches "delivered" without a reload.
    page.evaluate("window.__sameDocument = true")
    message_id = send(client, sender, "+13125550008", "live in the browser")
    row = page.locator(f"#m-{message_id}")
    expect(row).to_contain_text("live in the browser")
    expect(row.locator(".status")).to_have_text("delivered")
    expect(row.locator(".hooks")).to_contain_text("✓2")
    assert page.evaluate("window.__sameDocument") is True

    # Hostile text is shown as text and never runs.
    evil = '<img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script>'
    bad = send(client, sender, "+13125550009", evil)
    expect(page.locator(f"#m-{bad}")).to_contain_text("<img src=x")
    assert page.evaluate("window.__pwned === undefined") is True

    # Write as a handset through the form.
    page.click("#inject > summary")
    page.fill("#reply-form input[name=from]", "+13125550304")
    page.fill("#reply-form input[name=to]", sender.number)
    page.fill("#reply-form input[name=text]", "a reply from the handset")
    page.click("#reply-form button[type=submit]")
    expect(page.locator("#reply-result")).to_contain_text("Delivered to")
    expect(page.locator("li.row.inbound", has_text="a reply from the handset")).to_be_visible()
    screenshot(page, "inbox.png")

    # A number nobody owns: stored, with a warning.
    page.fill("#reply-form input[name=to]", "+19995550002")
    page.fill("#reply-form input[name=text]", "hello? anyone?")
    page.click("#reply-form button[type=submit]")
    expect(page.locator("#reply-result.warn")).to_contain_text("no webhook is sent")
    expect(page.locator("li.row.inbound", has_text="hello? anyone?")).to_be_visible()

    # The detail page shows the webhook deliveries with their status codes.
    page.click(f"#m-{message_id} a.text")
    expect(page.locator("#detail")).to_contain_text("message.finalized")
    expect(page.locator("#detail table.attempts").first).to_contain_text("200")
    screenshot(page, "message.png")


def test_live_updates_come_over_server_sent_events_not_polling(
    inbox: Inbox, client: Telnyx, sender: Sender
) -> None:
    requests: list[tuple[str, str]] = []
    page = inbox.open()
    page.on("request", lambda r: requests.append((r.resource_type, r.url)))
    page.reload()
    expect(page.locator("#live")).to_have_text("live")
    message_id = send(client, sender, "+13125550110", "pushed, not polled")
    expect(page.locator(f"#m-{message_id} .status")).not_to_have_text("queued")
    wait_final(client, message_id)
    expect(page.locator(f"#m-{message_id} .status")).to_have_text("delivery_failed")
    streams = [u for kind, u in requests if "/inbox/api/events" in u]
    assert streams and all(kind == "eventsource" for kind, u in requests if u in streams)
    assert not [u for _, u in requests if "/inbox/api/messages" in u]  # no polling


def test_a_revoked_key_sends_the_page_to_the_login(
    browser: Browser, server: RunningServer, account: Account
) -> None:
    async def add_key(ctx: AppContext) -> str:
        async with ctx.db.transaction() as uow:
            return await accounts.add_api_key(uow, account.org.id)

    key = server.run(add_key)
    inbox = Inbox(browser, server, dataclasses.replace(account, api_key=key))
    try:
        page = inbox.open()

        async def revoke(ctx: AppContext) -> int:
            async with ctx.db.transaction() as uow:
                return await accounts_repo.revoke_api_key(uow, key[:10], utcnow())

        assert server.run(revoke) == 1
        page.wait_for_url(
            lambda url: "/inbox/login" in url, timeout=(KEY_CHECK_SECONDS + 10) * 1000
        )
        expect(page.locator("#api_key")).to_be_visible()
    finally:
        inbox.close()


def test_search_and_filters(
    inbox: Inbox, client: Telnyx, receiver: WebhookReceiver, sender: Sender
) -> None:
    word = f"needle{unique_number()[-6:]}"
    other = make_sender(client, receiver, unique_number())
    hit = send(client, sender, "+13125550011", f"the {word} here")
    miss = send(client, sender, "+13125550011", "nothing")
    hit_other = send(client, other, "+13125550012", f"another {word}")
    page = inbox.open()
    expect(page.locator(f"#m-{miss}")).to_be_visible()

    page.fill("#filters input[name=q]", word)
    page.press("#filters input[name=q]", "Enter")
    page.wait_for_url(f"**/inbox?q={word}")
    expect(page.locator("li.row")).to_have_count(2)
    expect(page.locator(f"#m-{hit}")).to_be_visible()
    expect(page.locator(f"#m-{miss}")).to_have_count(0)

    # A filter's choice applies at once; a message that matches arrives live.
    page.click("#filters .more > summary")
    page.select_option("#filters select[name=profile]", other.profile_id)
    page.wait_for_url(f"**profile={other.profile_id}**")
    expect(page.locator("li.row")).to_have_count(1)
    expect(page.locator(f"#m-{hit_other}")).to_be_visible()
    later = send(client, other, "+13125550012", f"later {word}")
    send(client, sender, "+13125550011", f"not this profile {word}")
    expect(page.locator(f"#m-{later}")).to_be_visible()
    expect(page.locator("li.row")).to_have_count(2)
    screenshot(page, "search.png")
    page.click("#filters a.clear")
    page.wait_for_url("**/inbox")
    expect(page.locator(f"#m-{miss}")).to_be_visible()


def test_conversation_view_with_media_previews(
    inbox: Inbox, client: Telnyx, sender: Sender, media: MediaServer
) -> None:
    handset = "+13125550262"
    first = send(client, sender, handset, "Send us a photo of the damage")
    wait_final(client, first)
    page = inbox.open(f"/inbox/conversations/{sender.number}/{handset}")
    expect(page.locator("#chat li.bubble.outbound")).to_contain_text("photo of the damage")

    # The handset answers through the composer; its bubble arrives over the stream.
    page.fill("#reply-form input[name=text]", "Here it is")
    page.click("#reply-form button[type=submit]")
    expect(page.locator("#chat li.bubble.inbound")).to_contain_text("Here it is")

    image = png(120, 90)
    url, _ = media.add(len(image), "image/png", head=image, suffix=".png")
    r = page.request.post(
        f"{inbox.server.base_url}/inbox/api/reply",
        data={"from": handset, "to": sender.number, "media_urls": [url]},
    )
    assert r.ok, r.text()
    bubble = page.locator("#chat li.bubble.inbound").last
    img = bubble.locator("img")
    expect(img).to_have_attribute("src", url)
    wait_until(lambda: img.evaluate("i => i.complete && i.naturalWidth") == 120)
    bubbles = page.locator("#chat li.bubble")
    expect(bubbles).to_have_count(3)
    assert bubbles.first.get_attribute("class", timeout=TIMEOUT_MS) is not None
    screenshot(page, "conversation.png")

    # The conversations page lists it, and a new conversation appears there live.
    page.click("nav a[href='/inbox/conversations']")
    expect(page.locator("#conversations li").first).to_contain_text(handset)
    newcomer = "+13125550264"
    r = page.request.post(
        f"{inbox.server.base_url}/inbox/api/reply",
        data={"from": newcomer, "to": sender.number, "text": "new here"},
    )
    assert r.ok, r.text()
    expect(page.locator("#conversations li").first).to_contain_text(newcomer)
    expect(page.locator("#conversations li").first).to_contain_text("new here")
    screenshot(page, "conversations.png")
    page.go_back()

    # The message page previews it too.
    bubble.locator(".meta a").click()
    preview = page.locator("#detail .media img")
    expect(preview).to_have_attribute("src", url)
    wait_until(lambda: preview.evaluate("i => i.complete && i.naturalWidth") == 120)
    expect(page.locator("#detail .media figcaption")).to_contain_text("image/png")


def test_redeliver_button(
    inbox: Inbox, client: Telnyx, receiver: WebhookReceiver, account: Account
) -> None:
    flaky = make_sender(client, receiver, unique_number())
    receiver.behave(flaky.hook_path, status=500)
    message_id = send(client, flaky, "+13125550013", "redeliver me")
    page = inbox.open(f"/inbox/messages/{message_id}")
    failed = page.locator("details.delivery.failed")
    expect(failed).to_have_count(2)  # both events failed every attempt, seen live
    sent = page.locator("details.delivery", has_text="message.sent")
    attempts = sent.locator("table.attempts > tbody > tr.bad").count()
    sent.locator("details.sent > summary").first.click()
    expect(sent.locator("table.headers").first).to_contain_text("telnyx-signature-ed25519")
    expect(sent.locator("details.sent").first).to_contain_text("signature verifies")

    receiver.behave(flaky.hook_path, status=200)
    before = len(receiver.on(flaky.hook_path))
    sent.locator("button.redeliver").click()
    sent = page.locator("details.delivery", has_text="message.sent")
    expect(sent.locator(".redeliver-result")).to_have_text("Redelivered: HTTP 200")
    expect(sent.locator("summary .status")).to_have_text("delivered")
    expect(sent.locator("table.attempts > tbody > tr.ok")).to_have_count(1)
    assert sent.locator("table.attempts > tbody > tr.bad").count() == attempts
    got = receiver.on(flaky.hook_path)[before:]
    assert len(got) == 1
    event = client.webhooks.unwrap(got[0].body.decode(), headers=got[0].headers)
    assert event.data is not None
    screenshot(page, "redelivered.png")


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_phone_width_and_colour_schemes(
    inbox: Inbox, client: Telnyx, sender: Sender, scheme: str
) -> None:
    handset = "+13125550263"
    message_id = send(client, sender, handset, "A long message " * 12)
    wait_final(client, message_id)
    background = {"light": "rgb(244, 245, 247)", "dark": "rgb(15, 18, 24)"}[scheme]
    for path in (
        "/inbox",
        f"/inbox/conversations/{sender.number}/{handset}",
        f"/inbox/messages/{message_id}",
    ):
        page = inbox.open(path, viewport=PHONE, scheme=scheme)
        assert page.evaluate("getComputedStyle(document.body).backgroundColor") == background
        # Nothing sticks out sideways: no horizontal scrolling at 390 px.
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
        name = path.split("/")[2] if path.count("/") > 1 else "inbox"
        screenshot(page, f"phone-{scheme}-{name}.png")
    page = inbox.open("/inbox", scheme=scheme)
    row = page.locator(f"#m-{message_id}")
    expect(row).to_be_visible()
    assert row.evaluate("r => r.getBoundingClientRect().height") < 60  # one line on a desktop
    screenshot(page, f"desktop-{scheme}.png")
