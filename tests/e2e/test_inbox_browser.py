"""The web inbox in a real headless Chromium: log in, watch a message go live without reloading,
reply as a handset through the form, and check that hostile text never runs.

Skipped (visibly) when no Chromium is installed. Set SIGNALPOST_SCREENSHOT_DIR to keep screenshots
of the list and the detail page.
"""

from __future__ import annotations

import base64
import contextlib
import itertools
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from telnyx import Telnyx

from tests.conftest import Account, unique_number
from tests.support.messaging import make_sender
from tests.support.receiver import WebhookReceiver
from tests.support.server import RunningServer
from tests.support.wait import wait_until

websockets_sync = pytest.importorskip("websockets.sync.client")

CHROMIUM = next(
    (p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None
)
if CHROMIUM is None and os.environ.get("CI"):
    raise RuntimeError("CI must run the browser tests: install Debian's chromium package")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no chromium installed")


class Browser:
    """Headless Chromium driven over the DevTools protocol (one page)."""

    def __init__(self) -> None:
        assert CHROMIUM is not None
        self.profile = tempfile.mkdtemp(prefix="signalpost-chromium-")
        self.proc = subprocess.Popen(
            [
                CHROMIUM,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--no-first-run",
                "--window-size=1280,900",
                "--remote-debugging-port=0",
                f"--user-data-dir={self.profile}",
                "about:blank",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        port_file = Path(self.profile) / "DevToolsActivePort"
        wait_until(lambda: port_file.exists() and port_file.read_text().strip(), timeout=30)
        port = int(port_file.read_text().split()[0])
        targets = wait_until(
            lambda: [
                t
                for t in httpx.get(f"http://127.0.0.1:{port}/json/list").json()
                if t["type"] == "page"
            ],
            timeout=15,
        )
        self.stack = contextlib.ExitStack()
        self.ws = self.stack.enter_context(
            websockets_sync.connect(targets[0]["webSocketDebuggerUrl"], max_size=None)
        )
        self.ids = itertools.count(1)

    def send(self, method: str, **params: Any) -> dict[str, Any]:
        msg_id = next(self.ids)
        self.ws.send(json.dumps({"id": msg_id, "method": method, "params": params}))
        while True:
            reply = json.loads(self.ws.recv(timeout=30))
            if reply.get("id") == msg_id:
                if "error" in reply:
                    raise AssertionError(f"{method}: {reply['error']}")
                result: dict[str, Any] = reply.get("result", {})
                return result

    def js(self, expression: str) -> Any:
        result = self.send("Runtime.evaluate", expression=expression, returnByValue=True)
        if "exceptionDetails" in result:
            raise AssertionError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def goto(self, url: str) -> None:
        self.send("Page.navigate", url=url)
        wait_until(lambda: self.js("document.readyState") == "complete", timeout=15)

    def screenshot(self, name: str) -> bytes:
        png = base64.b64decode(self.send("Page.captureScreenshot", format="png")["data"])
        out = os.environ.get("SIGNALPOST_SCREENSHOT_DIR")
        if out:
            Path(out).mkdir(parents=True, exist_ok=True)
            (Path(out) / name).write_bytes(png)
        return png

    def close(self) -> None:
        try:
            self.stack.close()
        finally:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            shutil.rmtree(self.profile, ignore_errors=True)


@pytest.fixture
def browser() -> Iterator[Browser]:
    b = Browser()
    b.send("Page.enable")
    b.send("Runtime.enable")
    yield b
    b.close()


def row_text(b: Browser, message_id: str) -> str:
    return str(b.js(f"(document.getElementById('m-{message_id}') || {{}}).textContent || ''"))


def test_inbox_updates_live_and_replies_as_a_handset(
    server: RunningServer,
    browser: Browser,
    account: Account,
    client: Telnyx,
    receiver: WebhookReceiver,
) -> None:
    sender = make_sender(client, receiver, unique_number())
    browser.goto(f"{server.base_url}/inbox")
    assert browser.js("location.pathname") == "/inbox/login"
    browser.js(
        f"document.getElementById('api_key').value = {json.dumps(account.api_key)};"
        "document.querySelector('form').submit();"
    )
    wait_until(lambda: browser.js("location.pathname") == "/inbox", timeout=15)
    wait_until(lambda: browser.js("document.readyState") == "complete", timeout=15)
    assert account.api_key not in str(browser.js("document.cookie"))  # HttpOnly
    wait_until(lambda: browser.js("document.getElementById('live').textContent") == "live")

    # A message sent through the API shows up and reaches "delivered" without a reload.
    browser.js("window.__sameDocument = true")
    msg = client.messages.send(from_=sender.number, to="+13125550008", text="live in the browser")
    assert msg.data is not None and msg.data.id
    message_id = msg.data.id
    wait_until(
        lambda: (
            "delivered" in row_text(browser, message_id) and "✓2" in row_text(browser, message_id)
        )
    )
    assert browser.js("window.__sameDocument") is True
    assert "live in the browser" in row_text(browser, message_id)

    # Hostile text is shown as text and never runs.
    evil = '<img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script>'
    bad = client.messages.send(from_=sender.number, to="+13125550009", text=evil).data
    assert bad is not None and bad.id
    wait_until(lambda: "<img src=x" in row_text(browser, bad.id or ""))
    assert browser.js("window.__pwned === undefined") is True

    # Reply as handset through the form.
    browser.js(
        "var f = document.getElementById('reply-form');"
        "f.elements['from'].value = '+13125550304';"
        f"f.elements['to'].value = {json.dumps(sender.number)};"
        "f.elements['text'].value = 'a reply from the handset';"
        "f.requestSubmit();"
    )
    result = wait_until(
        lambda: browser.js(
            "(function(){var r = document.getElementById('reply-result');"
            "return r.hidden ? '' : r.textContent;})()"
        )
    )
    assert "Delivered to" in result, result
    wait_until(
        lambda: browser.js(
            "Array.from(document.querySelectorAll('#messages tr.inbound'))"
            ".some(function(r){return r.textContent.indexOf('a reply from the handset') >= 0;})"
        )
    )
    browser.screenshot("inbox.png")

    # The detail page shows the webhook deliveries with their status codes.
    browser.goto(f"{server.base_url}/inbox/messages/{message_id}")
    detail = str(browser.js("document.getElementById('detail').textContent"))
    assert "message.finalized" in detail
    assert "200" in detail
    wait_until(lambda: browser.js("document.getElementById('live').textContent") == "live")
    browser.screenshot("message.png")
