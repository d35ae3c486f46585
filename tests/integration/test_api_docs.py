"""`/docs` and `/redoc` work offline, and the OpenAPI document declares auth, response schemas and
the error envelope."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx
import pytest
from pydantic import TypeAdapter, ValidationError

from signalpost import wire
from tests.conftest import Account, unique_number
from tests.support.messaging import make_sender, wait_final
from tests.support.receiver import WebhookReceiver
from tests.support.server import RunningServer


@pytest.fixture(scope="module")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The documentation does not depend on the database: SQLite only."""
    path: Path = tmp_path_factory.mktemp("db") / "signalpost.db"
    yield f"sqlite+aiosqlite:///{path}"


_REFS = re.compile(r"""(?:src|href)\s*=\s*["']([^"']+)["']|url\(["']?([^"')]+)""")


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_docs_pages_load_every_asset_from_the_server(server: RunningServer, page: str) -> None:
    r = httpx.get(server.base_url + page)
    assert r.status_code == 200
    html = r.text
    # No external host at all: no CDN, no web fonts, no validator badge.
    assert not re.search(r"https?://(?!127\.0\.0\.1)", html), html
    assert "fonts.googleapis" not in html
    refs = [a or b for a, b in _REFS.findall(html)]
    scripts_and_styles = [u for u in refs if u.endswith((".js", ".css", ".png"))]
    assert scripts_and_styles, html
    for ref in refs:
        url = urljoin(server.base_url + page, ref)
        assert urlsplit(url).netloc == urlsplit(server.base_url).netloc, ref
        asset = httpx.get(url)
        assert asset.status_code == 200, ref
        assert len(asset.content) > 1000, ref
    spec = httpx.get(server.base_url + "/openapi.json")
    assert spec.status_code == 200
    assert "/openapi.json" in html


def test_openapi_declares_bearer_auth_and_typed_responses(server: RunningServer) -> None:
    doc = httpx.get(server.base_url + "/openapi.json").json()
    schemes = doc["components"]["securitySchemes"]
    assert schemes["bearerAuth"] == {
        "type": "http",
        "scheme": "bearer",
        "description": schemes["bearerAuth"]["description"],
    }
    errors_ref = {"$ref": "#/components/schemas/Errors"}
    operations = [
        (path, method, op)
        for path, item in doc["paths"].items()
        for method, op in item.items()
        if method in ("get", "post", "put", "patch", "delete")
    ]
    assert len(operations) > 50
    for path, method, op in operations:
        where = f"{method.upper()} {path}"
        responses = op["responses"]
        success = sorted(code for code in responses if code[0] in "23")
        assert success, where
        if success[0] == "200":
            content = responses["200"]["content"]
            if "application/json" in content:
                assert content["application/json"]["schema"], where
            else:
                assert path == "/metrics" and next(iter(content)).startswith("text/plain"), where
        for code, entry in responses.items():
            if code.startswith("4"):
                assert entry["content"]["application/json"]["schema"] == errors_ref, where
        if path.startswith("/v2/"):
            assert op.get("security") == [{"bearerAuth": []}], where
            assert "401" in responses, where
        if "{" in path:
            assert "404" in responses, where
        if "requestBody" in op:
            assert {"400", "422"} <= responses.keys(), where
        else:
            assert "422" not in responses or path.startswith("/simulator"), where
    send = doc["paths"]["/v2/messages"]["post"]["responses"]
    assert {"400", "401", "409", "422", "429"} <= send.keys()
    profiles = doc["paths"]["/v2/messaging_profiles"]["get"]["responses"]["200"]
    page = profiles["content"]["application/json"]["schema"]
    assert page["required"] == ["data", "meta"]
    assert page["properties"]["data"]["items"] == {"$ref": "#/components/schemas/MessagingProfile"}
    assert page["properties"]["meta"] == {"$ref": "#/components/schemas/PaginationMeta"}
    profile = doc["components"]["schemas"]["MessagingProfile"]
    assert "daily_spend_limit" in profile["required"]
    message = doc["components"]["schemas"]["Message"]
    assert "sent_at" not in message["required"] and "text" in message["required"]
    errors = doc["components"]["schemas"]["Errors"]
    assert errors["required"] == ["errors"]
    assert "HTTPValidationError" not in doc["components"]["schemas"]


def test_an_error_answer_matches_the_declared_envelope(server: RunningServer) -> None:
    r = httpx.get(server.base_url + "/v2/messaging_profiles")
    assert r.status_code == 401
    body = r.json()
    assert set(body) == {"errors"}
    assert {"code", "title"} <= body["errors"][0].keys()


def _check(model: Any, kind: str, body: Any, where: str) -> None:
    adapter = TypeAdapter(model)
    if kind == "bare":
        items = [body]
    elif kind == "one":
        items = [body["data"]]
    else:
        items = body["data"]
        assert items, f"{where}: nothing to check"
        if kind == "page":
            assert set(body["meta"]) == {"page_number", "page_size", "total_pages", "total_results"}
    for item in items:
        try:
            adapter.validate_python(item, strict=True)
        except ValidationError as exc:
            raise AssertionError(f"{where}: {exc}") from exc


def test_answers_match_the_documented_models(
    server: RunningServer, account: Account, receiver: WebhookReceiver
) -> None:
    """Real answers of the documented routes validate against the models the document names."""
    client = account.client
    sender = make_sender(
        client,
        receiver,
        unique_number(),
        # The server's own address is the built-in link domain.
        url_shortener_settings={"domain": server.base_url.split("://", 1)[1]},
    )
    doc = httpx.get(server.base_url + "/openapi.json").json()
    http = httpx.Client(
        base_url=server.base_url, headers={"Authorization": f"Bearer {account.api_key}"}
    )
    checked: set[tuple[str, str]] = set()

    def call(method: str, template: str, url: str, body: Any = None) -> Any:
        r = http.request(method.upper(), url, json=body)
        assert r.status_code == 200, (url, r.text)
        found = wire.model_for(method, template)
        assert found is not None, template
        model, kind = found
        declared = doc["paths"][template][method]["responses"]["200"]["content"]
        assert model.__name__ in json.dumps(declared), template
        _check(model, kind, r.json(), f"{method.upper()} {url}")
        checked.add((method, template))
        return r.json()

    p = f"/v2/messaging_profiles/{sender.profile_id}"
    msg = call(
        "post",
        "/v2/messages",
        "/v2/messages",
        {"from": sender.number, "to": "+13125550100", "text": "see https://example.com/a"},
    )["data"]
    wait_final(client, msg["id"])
    call("get", "/v2/messages/{message_id}", f"/v2/messages/{msg['id']}")
    later = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    scheduled = call(
        "post",
        "/v2/messages/schedule",
        "/v2/messages/schedule",
        {"from": sender.number, "to": "+13125550101", "text": "x", "send_at": later},
    )["data"]
    call("delete", "/v2/messages/{message_id}", f"/v2/messages/{scheduled['id']}")
    inbound = {"from": "+13125550392", "to": sender.number, "text": "STOP"}
    call("post", "/simulator/inbound", "/simulator/inbound", inbound)
    call("get", "/v2/messaging_profiles", "/v2/messaging_profiles")
    call("get", "/v2/messaging_profiles/{profile_id}", p)
    call("patch", "/v2/messaging_profiles/{profile_id}", p, {"name": "renamed"})
    call(
        "post",
        "/v2/messaging_profiles/{profile_id}/actions/regenerate_secret",
        f"{p}/actions/regenerate_secret",
    )
    call("get", "/v2/messaging_profiles/{profile_id}/phone_numbers", f"{p}/phone_numbers")
    cfg = call(
        "post",
        "/v2/messaging_profiles/{profile_id}/autoresp_configs",
        f"{p}/autoresp_configs",
        {"op": "info", "keywords": ["HELP"], "country_code": "US"},
    )["data"]
    call("get", "/v2/messaging_profiles/{profile_id}/autoresp_configs", f"{p}/autoresp_configs")
    call(
        "get",
        "/v2/messaging_profiles/{profile_id}/autoresp_configs/{autoresp_cfg_id}",
        f"{p}/autoresp_configs/{cfg['id']}",
    )
    call("get", "/v2/messaging_profiles/{profile_id}/metrics", f"{p}/metrics")
    call("get", "/v2/messaging_profile_metrics", "/v2/messaging_profile_metrics")
    alpha = call(
        "post",
        "/v2/alphanumeric_sender_ids",
        "/v2/alphanumeric_sender_ids",
        {"alphanumeric_sender_id": "Docs", "messaging_profile_id": sender.profile_id},
    )["data"]
    call("get", "/v2/alphanumeric_sender_ids", "/v2/alphanumeric_sender_ids")
    call("get", "/v2/alphanumeric_sender_ids/{id}", f"/v2/alphanumeric_sender_ids/{alpha['id']}")
    call(
        "get",
        "/v2/messaging_profiles/{profile_id}/alphanumeric_sender_ids",
        f"{p}/alphanumeric_sender_ids",
    )
    numbers = call("get", "/v2/phone_numbers/messaging", "/v2/phone_numbers/messaging")["data"]
    number_id = numbers[0]["id"]
    call("get", "/v2/messaging_phone_numbers", "/v2/messaging_phone_numbers")
    call("get", "/v2/phone_numbers/{id}/messaging", f"/v2/phone_numbers/{number_id}/messaging")
    call(
        "patch", "/v2/messaging_phone_numbers/{id}", f"/v2/messaging_phone_numbers/{number_id}", {}
    )
    call("get", "/v2/phone_numbers", "/v2/phone_numbers")
    call("get", "/v2/phone_numbers/{id}", f"/v2/phone_numbers/{number_id}")
    orders = call("get", "/v2/number_orders", "/v2/number_orders")["data"]
    call("get", "/v2/number_orders/{number_order_id}", f"/v2/number_orders/{orders[0]['id']}")
    bulk = call(
        "post",
        "/v2/messaging_numbers_bulk_updates",
        "/v2/messaging_numbers_bulk_updates",
        {"messaging_profile_id": sender.profile_id, "numbers": [sender.number]},
    )["data"]
    call(
        "get",
        "/v2/messaging_numbers_bulk_updates/{order_id}",
        f"/v2/messaging_numbers_bulk_updates/{bulk['order_id']}",
    )
    call("get", "/v2/messaging_optouts", "/v2/messaging_optouts")
    deliveries = call("get", "/v2/webhook_deliveries", "/v2/webhook_deliveries")["data"]
    call(
        "get",
        "/v2/webhook_deliveries/{delivery_id}",
        f"/v2/webhook_deliveries/{deliveries[0]['id']}",
    )
    call("get", "/simulator/chaos", "/simulator/chaos")
    call("get", "/analytics/messages/{message_id}/links", f"/analytics/messages/{msg['id']}/links")
    assert len(checked) == 34
    # Every route of the document is described, but the inbox page's own feed.
    for path, item in doc["paths"].items():
        for method, op in item.items():
            schema = op["responses"].get("200", {}).get("content", {}).get("application/json")
            if schema is None or path in ("/healthz", "/readyz"):
                continue
            generic = schema["schema"].get("$ref", "").endswith(("Envelope", "/Resource"))
            assert not generic or path.startswith("/inbox/"), (method, path)
