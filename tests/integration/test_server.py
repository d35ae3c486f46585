"""The server starts on both databases, reports health, and speaks the error envelope."""

from __future__ import annotations

import base64

import httpx

from tests.support.server import RunningServer


def test_health_and_readiness(server: RunningServer) -> None:
    assert httpx.get(f"{server.base_url}/healthz").json() == {"status": "ok"}
    ready = httpx.get(f"{server.base_url}/readyz")
    assert ready.status_code == 200, ready.text


def test_unknown_route_and_wrong_method_use_the_error_envelope(server: RunningServer) -> None:
    r = httpx.get(f"{server.base_url}/v2/no_such_thing")
    assert r.status_code == 404
    assert r.headers["content-type"] == "application/json"
    assert r.json()["errors"][0]["code"] == "10005"
    r = httpx.request("PUT", f"{server.base_url}/healthz")
    assert r.status_code == 405
    assert r.json()["errors"][0]["title"]


def test_non_json_body_is_415(server: RunningServer) -> None:
    r = httpx.post(
        f"{server.base_url}/v2/messaging_profiles",
        content=b"name=x",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert r.status_code == 415
    assert r.json()["errors"][0]["code"] == "10014"


def test_default_organization_has_a_telnyx_style_public_key(server: RunningServer) -> None:
    boot = server.app.state.bootstrap
    raw = base64.b64decode(boot.organization.public_key, validate=True)
    assert len(raw) == 32
    assert len(boot.organization.public_key) == 44
