"""Bad input gets a 4xx in the error envelope, never a 500, a hang or a dropped connection.

Each test reproduces a defect found by fuzzing (issue 12): a lone surrogate or a NUL in a JSON
string, a NUL in the path or a query value, a 10,000-character Idempotency-Key, message-level
webhook URLs the profile would refuse, `to` with a trailing newline, huge or too many headers,
bodies over the limit (declared or chunked), deep nesting, invalid UTF-8, integers past 64 bits.
The send endpoints are served by the fast lane (kit.fastlane), so they are probed as well as the
framework's routes. The module's server has a body limit of 64 KiB (`max_body_bytes`) and gives a body 1 s to arrive.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import telnyx
from telnyx import Telnyx

from tests.conftest import Account
from tests.conftest import test_settings as settings_for
from tests.support.messaging import Sender
from tests.support.rawhttp import RawConnection, request
from tests.support.server import RunningServer

LIMIT = 64 * 1024
BODY_TIMEOUT = 3.0  # short, but no body of the other tests (under load) takes this long
HANDSET = "+14155550100"


@pytest.fixture(scope="module")
def settings_overrides() -> dict[str, Any]:
    return {"max_body_bytes": LIMIT, "request_body_timeout": BODY_TIMEOUT}


def _post_raw(server: RunningServer, key: str, path: str, body: bytes) -> httpx.Response:
    return httpx.post(
        f"{server.base_url}{path}",
        content=body,
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
        timeout=10,
    )


def _error(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    errors = response.json()["errors"]
    assert errors and errors[0]["code"] and errors[0]["title"]
    return dict(errors[0])


def _send_body(sender: Sender, text: str) -> bytes:
    return b'{"from":"%s","to":"%s","text":"%s"}' % (
        sender.number.encode(),
        HANDSET.encode(),
        text.encode(),
    )


@pytest.mark.parametrize("path", ["/v2/messages", "/v2/messages/long_code"])
def test_a_lone_surrogate_in_text_is_400_with_a_pointer(
    server: RunningServer, account: Account, sender: Sender, path: str
) -> None:
    r = _post_raw(server, account.api_key, path, _send_body(sender, "x\\ud800y"))
    error = _error(r, 400)
    assert error["source"] == {"pointer": "/text"}
    # A surrogate pair is a character like any other.
    ok = _post_raw(server, account.api_key, path, _send_body(sender, "x\\ud83d\\ude00y"))
    assert ok.status_code == 200, ok.text
    assert ok.json()["data"]["text"] == "x\U0001f600y"


def test_a_lone_surrogate_in_a_profile_name_is_400(server: RunningServer, account: Account) -> None:
    body = b'{"name":"a\\udc00","whitelisted_destinations":["US"]}'
    error = _error(_post_raw(server, account.api_key, "/v2/messaging_profiles", body), 400)
    assert error["source"] == {"pointer": "/name"}


def test_nul_in_text_is_400_through_the_sdk(client: Telnyx, sender: Sender) -> None:
    with pytest.raises(telnyx.BadRequestError) as exc:
        client.messages.send(from_=sender.number, to=HANDSET, text="a\x00b")
    assert exc.value.status_code == 400
    assert exc.value.body["errors"][0]["source"] == {"pointer": "/text"}  # type: ignore[index]


def test_nul_in_a_nested_value_and_in_a_key_is_400(server: RunningServer, account: Account) -> None:
    body = {"name": "p", "whitelisted_destinations": ["US", "C\x00A"]}
    r = _post_raw(server, account.api_key, "/v2/messaging_profiles", json.dumps(body).encode())
    assert _error(r, 400)["source"] == {"pointer": "/whitelisted_destinations/1"}
    body = {"name": "p", "features": {"k\x00": True}}
    r = _post_raw(server, account.api_key, "/v2/messaging_profiles", json.dumps(body).encode())
    assert _error(r, 400)["source"] == {"pointer": "/features/k\x00"}


def test_nul_in_the_path_or_a_query_value_is_400(server: RunningServer, account: Account) -> None:
    headers = {"Authorization": f"Bearer {account.api_key}"}
    r = httpx.get(f"{server.base_url}/v2/messages/%00", headers=headers)
    assert _error(r, 400)["code"] == "10015"
    r = httpx.get(f"{server.base_url}/v2/messaging_profiles?filter%5Bname%5D=a%00", headers=headers)
    assert _error(r, 400)["source"] == {"parameter": "filter[name]"}


def test_a_long_idempotency_key_is_400(client: Telnyx, sender: Sender) -> None:
    with pytest.raises(telnyx.BadRequestError) as exc:
        client.messages.send(
            from_=sender.number,
            to=HANDSET,
            text="hi",
            extra_headers={"Idempotency-Key": "k" * 10_000},
        )
    assert exc.value.body["errors"][0]["source"] == {"parameter": "Idempotency-Key"}  # type: ignore[index]
    # 255 characters is the longest key kept, and it works as a key.
    key = "k" * 255
    first = client.messages.send(
        from_=sender.number, to=HANDSET, text="hi", extra_headers={"Idempotency-Key": key}
    ).data
    again = client.messages.send(
        from_=sender.number, to=HANDSET, text="hi", extra_headers={"Idempotency-Key": key}
    ).data
    assert first is not None and again is not None and first.id == again.id


BAD_URLS = [
    "::::",
    "file:///etc/passwd",
    "gopher://example.com/",
    "javascript:alert(1)",
    "http://a..b/hook",  # a host with no IDNA form: never reachable
]


@pytest.mark.parametrize("url", BAD_URLS)
@pytest.mark.parametrize("field", ["webhook_url", "webhook_failover_url"])
def test_message_webhook_urls_are_checked_as_the_profiles_are(
    client: Telnyx, sender: Sender, url: str, field: str
) -> None:
    with pytest.raises(telnyx.UnprocessableEntityError) as exc:
        client.messages.send(from_=sender.number, to=HANDSET, text="x", **{field: url})  # type: ignore[arg-type]
    message_error = exc.value.body["errors"][0]  # type: ignore[index]
    with pytest.raises(telnyx.UnprocessableEntityError) as exc:
        client.messaging_profiles.create(
            name="p",
            whitelisted_destinations=["US"],
            **{field: url},  # type: ignore[arg-type]
        )
    profile_error = exc.value.body["errors"][0]  # type: ignore[index]
    assert message_error["code"] == profile_error["code"] == "10003"
    assert message_error["source"] == profile_error["source"] == {"pointer": f"/{field}"}


def test_other_send_endpoints_check_webhook_urls_too(client: Telnyx, sender: Sender) -> None:
    with pytest.raises(telnyx.UnprocessableEntityError):
        client.messages.send_long_code(
            from_=sender.number, to=HANDSET, text="x", webhook_url="gopher://example.com/"
        )
    with pytest.raises(telnyx.UnprocessableEntityError):
        client.messages.send_group_mms(
            from_=sender.number,
            to=[HANDSET, "+14155550101"],
            text="x",
            webhook_failover_url="file:///etc/passwd",
        )


@pytest.mark.parametrize(
    "to", [HANDSET + "\n", HANDSET + "\r\n", "\t" + HANDSET, "+1٤١٥5550100", "+1415555010０"]
)
def test_to_with_a_newline_a_tab_or_other_digits_is_40310(
    client: Telnyx, sender: Sender, to: str
) -> None:
    with pytest.raises(telnyx.BadRequestError) as exc:
        client.messages.send(from_=sender.number, to=to, text="x")
    assert exc.value.body["errors"][0]["code"] == "40310"  # type: ignore[index]
    with pytest.raises(telnyx.BadRequestError) as exc:
        client.messages.send_group_mms(from_=sender.number, to=[to, "+14155550101"], text="x")
    assert exc.value.body["errors"][0]["code"] == "40310"  # type: ignore[index]


def test_a_megabyte_of_headers_is_431(server: RunningServer, account: Account) -> None:
    with RawConnection(server.port) as conn:
        conn.send(request("GET", "/v2/messaging_profiles", headers={"X-Big": "a" * 1_000_000}))
        r = conn.response()
        assert r.status == 431
        assert r.json()["errors"][0]["code"] == "10015"
        assert r.headers["connection"] == "close"


def test_two_hundred_headers_are_431(server: RunningServer, account: Account) -> None:
    headers = {f"X-H{i}": "a" for i in range(200)}
    r = httpx.get(f"{server.base_url}/v2/messaging_profiles", headers=headers)
    assert _error(r, 431)["code"] == "10015"
    r = httpx.get(f"{server.base_url}/v2/messaging_profiles", headers={"X-Big": "a" * 40_000})
    assert _error(r, 431)["code"] == "10015"
    # Fewer, ordinary headers are fine.
    headers = {"Authorization": f"Bearer {account.api_key}"} | {f"X-H{i}": "a" for i in range(40)}
    assert httpx.get(f"{server.base_url}/v2/messaging_profiles", headers=headers).is_success


@pytest.mark.parametrize("path", ["/v2/messages", "/v2/messaging_profiles"])
def test_a_declared_body_over_the_limit_is_413_before_it_is_sent(
    server: RunningServer, account: Account, path: str
) -> None:
    with RawConnection(server.port) as conn:
        headers = {
            "Authorization": f"Bearer {account.api_key}",
            "Content-Type": "application/json",
            "Content-Length": str(LIMIT + 1),
        }
        # Only the head is sent: the answer comes without a byte of the body.
        conn.send(request("POST", path, headers=headers))
        r = conn.response()
        assert r.status == 413
        assert r.json()["errors"][0]["code"] == "10015"
        assert r.headers["connection"] == "close"
        assert conn.closed_by_server()


@pytest.mark.parametrize("path", ["/v2/messages", "/v2/messaging_profiles"])
def test_a_chunked_body_over_the_limit_is_413_before_it_is_read_whole(
    server: RunningServer, account: Account, path: str
) -> None:
    headers = {
        "Authorization": f"Bearer {account.api_key}",
        "Content-Type": "application/json",
        "Transfer-Encoding": "chunked",
    }
    with RawConnection(server.port) as conn:
        conn.send(request("POST", path, headers=headers))
        chunk = b'{"text":"' + b"a" * 8192
        sent = 0
        while sent <= LIMIT + len(chunk):
            conn.send(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            sent += len(chunk)
        # The body never ends; the server answers once it has read past the limit.
        r = conn.response()
        assert r.status == 413
        assert r.headers["connection"] == "close"


def test_a_body_under_the_limit_is_read_and_validated(
    server: RunningServer, account: Account
) -> None:
    body = json.dumps({"name": "a" * (LIMIT - 100)}).encode()
    r = _post_raw(server, account.api_key, "/v2/messaging_profiles", body)
    assert _error(r, 422)["source"]["pointer"] == "/name"  # too long a name, not too large a body


@pytest.mark.parametrize("path", ["/v2/messages", "/v2/messaging_profiles"])
def test_deeply_nested_json_is_400(server: RunningServer, account: Account, path: str) -> None:
    for depth in (100, 20_000):
        body = b'{"name":' + b"[" * depth + b"]" * depth + b"}"
        assert _error(_post_raw(server, account.api_key, path, body), 400)["code"] == "10015"


@pytest.mark.parametrize("path", ["/v2/messages", "/v2/messaging_profiles"])
def test_invalid_utf8_and_nul_bytes_are_400(
    server: RunningServer, account: Account, path: str
) -> None:
    for body in (b'{"name":"\xff\xfe"}', b'{"name":"a\x00"}', b'{"name":"a"}\x00'):
        assert _error(_post_raw(server, account.api_key, path, body), 400)["code"] == "10023"


def test_an_integer_past_64_bits_is_400(server: RunningServer, account: Account) -> None:
    body = b'{"name":"p","whitelisted_destinations":["US"],"features":{"n":%d}}' % (2**70)
    r = _post_raw(server, account.api_key, "/v2/messaging_profiles", body)
    assert _error(r, 400)["source"] == {"pointer": "/features/n"}


def test_the_connection_stays_usable_after_a_400(server: RunningServer, account: Account) -> None:
    headers = {"Authorization": f"Bearer {account.api_key}", "Content-Type": "application/json"}
    with RawConnection(server.port) as conn:
        conn.send(
            request("POST", "/v2/messaging_profiles", headers=headers, body=b'{"a":"\\u0000"}')
        )
        assert conn.response().status == 400
        conn.send(request("GET", "/v2/messaging_profiles", headers=headers))
        assert conn.response().status == 200


@pytest.fixture(scope="module")
def failing_server(database_url: str, server: RunningServer) -> Iterator[RunningServer]:
    """A second server on the module's database with one route that fails as a bug would."""
    running = RunningServer(settings_for(database_url, workers=0))

    @running.app.get("/test/fail")
    async def fail() -> None:
        raise RuntimeError("a bug in a route")

    running.start()
    yield running
    running.stop()


def test_a_500_says_connection_close_and_the_server_closes_cleanly(
    failing_server: RunningServer, caplog: pytest.LogCaptureFixture
) -> None:
    with RawConnection(failing_server.port) as conn:
        conn.send(request("GET", "/test/fail"))
        r = conn.response()
        assert r.status == 500
        assert r.json()["errors"][0]["code"] == "10007"
        assert r.headers["connection"] == "close"
        assert conn.closed_by_server()
        assert not conn.reset
    assert "a bug in a route" in caplog.text
    # A client that keeps a pool (the SDK's httpx) goes on working on a new connection.
    with httpx.Client(base_url=failing_server.base_url) as client:
        assert client.get("/test/fail").status_code == 500
        assert client.get("/healthz").status_code == 200


def test_a_head_past_the_hard_bound_is_cut_off_while_it_arrives(server: RunningServer) -> None:
    """The server stops parsing a head four times the header limit long (kit.httpserver), without
    keeping it: a client sending a 10 MB header gets that 431 (not the application's, which
    would come once the whole head is in memory) and the end of the stream."""
    bound = 4 * server.settings.max_header_bytes
    with RawConnection(server.port) as conn:
        conn.send(b"GET /v2/messaging_profiles HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: ")
        sent = 0
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            while sent < 10_000_000:
                conn.send(b"a" * 65536)
                sent += 65536
        r = conn.response()
        assert r.status == 431
        assert r.json()["errors"][0]["code"] == "10015"
        assert str(bound) in r.json()["errors"][0]["detail"]
        assert conn.closed_by_server()


@pytest.mark.parametrize("path", ["/v2/messages", "/v2/messaging_profiles"])
def test_a_body_that_stops_arriving_is_408_not_a_hang(
    server: RunningServer, account: Account, path: str
) -> None:
    headers = {
        "Authorization": f"Bearer {account.api_key}",
        "Content-Type": "application/json",
        "Content-Length": "100",
    }
    with RawConnection(server.port, timeout=BODY_TIMEOUT + 10) as conn:
        started = time.monotonic()
        conn.send(request("POST", path, headers=headers, body=b'{"to":'))
        r = conn.response()
        assert r.status == 408
        assert r.json()["errors"][0]["code"] == "10008"
        assert r.headers["connection"] == "close"
        assert time.monotonic() - started < BODY_TIMEOUT + 5
