"""The API documentation: `/docs` (Swagger UI) and `/redoc` served with their assets from an
installed package (no CDN, no web fonts), and an OpenAPI document that declares bearer
authentication, a response schema for every route and the error responses in Telnyx's envelope."""

from __future__ import annotations

import re
from collections.abc import Callable
from importlib.resources import files
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.openapi.utils import get_openapi
from fastapi.staticfiles import StaticFiles
from pydantic import TypeAdapter
from starlette.requests import Request
from starlette.responses import HTMLResponse

ASSETS_URL = "/docs-assets"
BEARER = "bearerAuth"

_ERROR_TEXT = {
    "400": "Bad request: malformed JSON (10023) or an invalid parameter (10015, `source.parameter`).",
    "401": "Authentication failed (10009): no API key, or an unknown or revoked one.",
    "404": "Not found (10005), or another organization's.",
    "409": "Conflict (e.g. 40300: the recipient opted out).",
    "422": "Invalid or missing field (10015, 10004, …); `source.pointer` names it.",
    "429": "Too many requests (e.g. 40318: the sender's queue is full).",
}

_SCHEMAS: dict[str, Any] = {
    "ErrorSource": {
        "type": "object",
        "properties": {"pointer": {"type": "string"}, "parameter": {"type": "string"}},
    },
    "Error": {
        "type": "object",
        "required": ["code", "title"],
        "properties": {
            "code": {"type": "string", "examples": ["10015"]},
            "title": {"type": "string"},
            "detail": {"type": "string"},
            "source": {"$ref": "#/components/schemas/ErrorSource"},
            "meta": {"type": "object", "additionalProperties": True},
        },
    },
    "Errors": {
        "type": "object",
        "required": ["errors"],
        "properties": {
            "errors": {"type": "array", "items": {"$ref": "#/components/schemas/Error"}}
        },
    },
    "PaginationMeta": {
        "type": "object",
        "required": ["page_number", "page_size", "total_pages", "total_results"],
        "properties": {
            name: {"type": "integer"}
            for name in ("page_number", "page_size", "total_pages", "total_results")
        },
    },
    "Health": {
        "type": "object",
        "required": ["status"],
        "properties": {"status": {"type": "string"}, "detail": {"type": "string"}},
    },
    "Resource": {
        "type": "object",
        "description": "A Telnyx object (see the Telnyx Messaging API reference for its fields).",
        "additionalProperties": True,
    },
    "DataEnvelope": {
        "type": "object",
        "required": ["data"],
        "properties": {"data": {"$ref": "#/components/schemas/Resource"}},
    },
    "ListEnvelope": {
        "type": "object",
        "required": ["data", "meta"],
        "properties": {
            "data": {"type": "array", "items": {"$ref": "#/components/schemas/Resource"}},
            "meta": {"$ref": "#/components/schemas/PaginationMeta"},
        },
    },
}

_PATH_PARAM = re.compile(r"\{[^}]+\}")
# The send endpoints: 409 for an opted-out recipient (40300), 429 when the queue is full (40318).
_SEND = re.compile(
    r"^/v2/messages(/(long_code|short_code|alphanumeric_sender_id|number_pool|schedule|group_mms|whatsapp))?$"
)
# Operations whose answer is neither `{"data": …}` nor a page of them.
_HEALTH = ("/healthz", "/readyz")


# The object a route answers with and how it is wrapped: "one" (`{"data": obj}`), "page" (with
# `meta`), "list" (`{"data": [obj, …]}`) or "bare"; None when no model describes it.
Describe = Callable[[str, str], tuple[type[Any], str] | None]


def install_docs(app: FastAPI, describe: Describe | None = None) -> None:
    """Serve `/docs` and `/redoc` with the assets the `fastapi-offline` package ships.

    The application must be created with `docs_url=None, redoc_url=None`."""
    assets = files("fastapi_offline") / "static"
    app.mount(ASSETS_URL, StaticFiles(directory=str(assets)), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_swagger_ui_html(
            openapi_url=f"{root}{app.openapi_url}",
            title=f"{app.title} - API",
            swagger_js_url=f"{root}{ASSETS_URL}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{ASSETS_URL}/swagger-ui.css",
            swagger_favicon_url=f"{root}{ASSETS_URL}/favicon.png",
            # No badge fetched from the public validator service.
            swagger_ui_parameters={"validatorUrl": None, "persistAuthorization": True},
        )

    @app.get("/redoc", include_in_schema=False)
    async def redoc(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_redoc_html(
            openapi_url=f"{root}{app.openapi_url}",
            title=f"{app.title} - API",
            redoc_js_url=f"{root}{ASSETS_URL}/redoc.standalone.js",
            redoc_favicon_url=f"{root}{ASSETS_URL}/favicon.png",
            with_google_fonts=False,
        )

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
            )
            app.openapi_schema = enrich(schema, describe)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def enrich(schema: dict[str, Any], describe: Describe | None = None) -> dict[str, Any]:
    """Bearer auth, response schemas and error responses on every operation."""
    components = schema.setdefault("components", {})
    components.setdefault("schemas", {}).update(_SCHEMAS)
    models = _Models(components["schemas"], describe)
    components.setdefault("securitySchemes", {})[BEARER] = {
        "type": "http",
        "scheme": "bearer",
        "description": "An API key of your organization: `Authorization: Bearer KEY…`.",
    }
    for path, item in schema.get("paths", {}).items():
        for method, op in item.items():
            if method in ("get", "post", "put", "patch", "delete"):
                _operation(path, method, op, models)
    for unused in ("HTTPValidationError", "ValidationError"):
        components["schemas"].pop(unused, None)
    return schema


class _Models:
    """Component schemas of the objects routes answer with, added as they are first used."""

    def __init__(self, schemas: dict[str, Any], describe: Describe | None) -> None:
        self.schemas = schemas
        self.describe = describe

    def response(self, method: str, path: str) -> dict[str, Any] | None:
        found = self.describe(method, path) if self.describe else None
        if found is None:
            return None
        model, kind = found
        ref = {"$ref": f"#/components/schemas/{self._add(model)}"}
        if kind == "bare":
            return ref
        if kind == "one":
            return {"type": "object", "required": ["data"], "properties": {"data": ref}}
        envelope: dict[str, Any] = {
            "type": "object",
            "required": ["data"],
            "properties": {"data": {"type": "array", "items": ref}},
        }
        if kind == "page":
            envelope["required"] = ["data", "meta"]
            envelope["properties"]["meta"] = {"$ref": "#/components/schemas/PaginationMeta"}
        return envelope

    def _add(self, model: type[Any]) -> str:
        name = model.__name__
        if name not in self.schemas:
            schema = TypeAdapter(model).json_schema(
                ref_template="#/components/schemas/{model}", mode="serialization"
            )
            self.schemas.update(schema.pop("$defs", {}))
            self.schemas[name] = schema
        return name


def _operation(path: str, method: str, op: dict[str, Any], models: _Models) -> None:
    secured = bool(op.get("security"))
    if secured:
        op["security"] = [{BEARER: []}]
    _errors(path, method, op, secured)
    _success(path, method, op, models)


def _errors(path: str, method: str, op: dict[str, Any], secured: bool) -> None:
    """The error answers the route can give, each in the Telnyx envelope."""
    responses: dict[str, Any] = op.setdefault("responses", {})
    auto = responses.get("422", {})
    if auto.get("description") == "Validation Error" and "requestBody" not in op:
        # FastAPI's generic entry: query and path errors answer 400 and 404 here, not 422.
        del responses["422"]
    codes: set[str] = {c for c in responses if c.startswith("4")}
    if secured:
        codes.add("401")
    if _PATH_PARAM.search(path):
        codes.add("404")
    if any(p.get("in") == "query" for p in op.get("parameters", [])):
        codes.add("400")
    if "requestBody" in op:
        codes.update(("400", "422"))
    if method == "post" and _SEND.match(path):
        codes.update(("409", "429"))
    for code in sorted(codes):
        entry = responses.setdefault(code, {})
        if entry.get("description") in (None, "Validation Error"):
            entry["description"] = _ERROR_TEXT.get(code, "Error.")
        entry["content"] = {"application/json": {"schema": {"$ref": "#/components/schemas/Errors"}}}


def _success(path: str, method: str, op: dict[str, Any], models: _Models) -> None:
    """The schema of a JSON success: the route's own, its object's model, or an envelope."""
    ok = op["responses"].get("200")
    if ok is None or "application/json" not in ok.setdefault("content", {"application/json": {}}):
        return
    content = ok["content"]["application/json"]
    current = content.get("schema") or {}
    if (
        current.get("$ref")
        or current.get("properties")
        or current.get("type") not in (None, "object")
    ):
        return
    if path in _HEALTH:
        content["schema"] = {"$ref": "#/components/schemas/Health"}
        return
    described = models.response(method, path)
    if described is not None:
        content["schema"] = described
        return
    is_list = (
        method == "get"
        and not path.endswith("}")
        and any(p.get("name") == "page[number]" for p in op.get("parameters", []))
    )
    envelope = "ListEnvelope" if is_list else "DataEnvelope"
    content["schema"] = {"$ref": f"#/components/schemas/{envelope}"}
