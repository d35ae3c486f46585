"""`/docs` and `/redoc` work offline, and the OpenAPI document declares auth, response schemas and
the error envelope."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import httpx
import pytest

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
    assert profiles["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ListEnvelope"
    }
    errors = doc["components"]["schemas"]["Errors"]
    assert errors["required"] == ["errors"]
    assert "HTTPValidationError" not in doc["components"]["schemas"]


def test_an_error_answer_matches_the_declared_envelope(server: RunningServer) -> None:
    r = httpx.get(server.base_url + "/v2/messaging_profiles")
    assert r.status_code == 401
    body = r.json()
    assert set(body) == {"errors"}
    assert {"code", "title"} <= body["errors"][0].keys()
