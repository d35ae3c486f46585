"""One error type, one handler, one wire shape: the Telnyx `{"errors": [...]}` envelope."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from sqlalchemy.exc import DBAPIError
from starlette.exceptions import HTTPException as StarletteHTTPException

from signalpost.kit.jsonio import JSONResponse

log = logging.getLogger("signalpost.errors")


class ApiError(Exception):
    """An expected failure, rendered as one item of the Telnyx error envelope."""

    def __init__(
        self,
        status: int,
        code: str | int,
        title: str,
        detail: str | None = None,
        *,
        pointer: str | None = None,
        parameter: str | None = None,
        meta: Mapping[str, Any] | None = None,
        should_retry: bool | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(f"{code} {title}: {detail or ''}")
        self.status = status
        self.code = str(code)
        self.title = title
        self.detail = detail
        self.pointer = pointer
        self.parameter = parameter
        self.meta = dict(meta) if meta else None
        self.should_retry = should_retry
        self.headers = dict(headers or {})

    def item(self) -> dict[str, Any]:
        out: dict[str, Any] = {"code": self.code, "title": self.title}
        if self.detail:
            out["detail"] = self.detail
        source: dict[str, str] = {}
        if self.pointer is not None:
            source["pointer"] = self.pointer
        if self.parameter is not None:
            source["parameter"] = self.parameter
        if source:
            out["source"] = source
        if self.meta:
            out["meta"] = self.meta
        return out


def error_item(code: str | int, title: str, detail: str | None = None) -> dict[str, Any]:
    """An error item as it appears inside a message's `errors[]` (delivery failures)."""
    item: dict[str, Any] = {"code": str(code), "title": title}
    if detail:
        item["detail"] = detail
    return item


def not_found(what: str = "Resource", detail: str | None = None) -> ApiError:
    return ApiError(
        404,
        "10005",
        "Resource not found",
        detail or f"{what} not found.",
        should_retry=False,
    )


def invalid(
    pointer: str, detail: str, code: str = "10015", title: str = "Invalid value"
) -> ApiError:
    """A request-body value that is well-formed JSON but not acceptable."""
    return ApiError(422, code, title, detail, pointer=pointer, should_retry=False)


def bad_parameter(parameter: str, detail: str) -> ApiError:
    return ApiError(
        400, "10015", "Invalid parameter", detail, parameter=parameter, should_retry=False
    )


def unexpected_error() -> JSONResponse:
    """The answer to a request that failed on something unexpected (a bug, the database gone).

    It closes the connection: the server may be in no state to read the next request on it, and a
    client must not find that out by sending one."""
    return render(
        [
            ApiError(
                500,
                "10007",
                "Unexpected error",
                "An unexpected error occurred.",
                headers={"connection": "close"},
            )
        ]
    )


def data_error(exc: BaseException) -> ApiError | None:
    """A database refusing a request's value as data (SQLSTATE class 22: too long, out of range,
    not valid in the encoding), which a missing bound let through: the request's fault, not ours."""
    if not isinstance(exc, DBAPIError):
        return None
    sqlstate = getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None)
    if not (isinstance(sqlstate, str) and sqlstate.startswith("22")):
        return None
    return ApiError(
        400,
        "10015",
        "Invalid value",
        "A value in the request is out of the range this server stores.",
        should_retry=False,
    )


def answer_unexpected(exc: Exception, what: str) -> JSONResponse:
    """The answer to an exception no handler expected, logged: 400 where the database refused a
    value as data (`data_error`), else 500."""
    problem = data_error(exc)
    if problem is not None:
        log.warning("%s: the database refused a value", what, exc_info=exc)
        return render([problem])
    log.error("%s failed", what, exc_info=exc)
    return unexpected_error()


def render(errors: Sequence[ApiError], status: int | None = None) -> JSONResponse:
    first = errors[0]
    headers = dict(first.headers)
    if first.should_retry is not None:
        headers["x-should-retry"] = "true" if first.should_retry else "false"
    return JSONResponse(
        {"errors": [e.item() for e in errors]},
        status_code=status or first.status,
        headers=headers,
    )


def _pointer(loc: Sequence[str | int]) -> str:
    return "/" + "/".join(str(p).replace("~", "~0").replace("/", "~1") for p in loc)


def validation_errors(exc: RequestValidationError) -> list[ApiError]:
    """Map FastAPI/pydantic validation errors to Telnyx error items."""
    out: list[ApiError] = []
    for err in exc.errors():
        loc = list(err.get("loc", ()))
        where = loc[0] if loc else "body"
        rest = loc[1:]
        kind = str(err.get("type", ""))
        msg = str(err.get("msg", "Invalid value"))
        if where == "body":
            if kind == "json_invalid":
                out.append(
                    ApiError(400, "10023", "Invalid JSON", "The request body is not valid JSON.")
                )
                continue
            if kind == "missing":
                out.append(
                    ApiError(
                        422,
                        "10004",
                        "Missing required parameter",
                        f"The '{'.'.join(map(str, rest)) or 'body'}' parameter is required.",
                        pointer=_pointer(rest),
                    )
                )
                continue
            if not rest and kind in ("model_attributes_type", "dict_type", "model_type"):
                out.append(
                    ApiError(
                        400,
                        "10015",
                        "Bad request",
                        "The request body must be a JSON object.",
                        pointer="/",
                    )
                )
                continue
            # Drop pydantic's internal union/function tags from the pointer.
            clean = [
                p
                for p in rest
                if not (isinstance(p, str) and ("[" in p or p.startswith("function-")))
            ]
            out.append(ApiError(422, "10015", "Invalid value", msg, pointer=_pointer(clean)))
        elif where in ("query", "header"):
            name = str(rest[0]) if rest else ""
            out.append(
                ApiError(400, "10015", "Invalid parameter", f"{name}: {msg}", parameter=name)
            )
        else:  # path
            name = str(rest[0]) if rest else ""
            out.append(
                ApiError(404, "10005", "Resource not found", f"{name}: {msg}", parameter=name)
            )
    for e in out:
        e.should_retry = False
    return out or [ApiError(400, "10015", "Bad request", "The request is not valid.")]


_STATUS_CODES = {
    400: ("10015", "Bad request"),
    401: ("10009", "Authentication failed"),
    403: ("10010", "Authorization failed"),
    404: ("10005", "Resource not found"),
    405: ("10015", "Method not allowed"),
    408: ("10008", "Request timeout"),
    409: ("10012", "Conflict"),
    413: ("10015", "Request too large"),
    415: ("10014", "Unsupported media type"),
    422: ("10015", "Unprocessable entity"),
    429: ("10011", "Too many requests"),
}


def install_error_handlers(app: FastAPI) -> None:
    async def on_api_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ApiError)
        return render([exc])

    async def on_validation(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        errors = validation_errors(exc)
        status = 400 if any(e.status == 400 for e in errors) else errors[0].status
        return render(errors, status)

    async def on_http(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        code, title = _STATUS_CODES.get(exc.status_code, ("10007", "Unexpected error"))
        detail = exc.detail if isinstance(exc.detail, str) else None
        if exc.status_code == 404:
            detail = f"No route matches {request.method} {request.url.path}."
        if exc.status_code == 405:
            detail = f"{request.method} is not allowed on {request.url.path}."
        return render([ApiError(exc.status_code, code, title, detail, headers=exc.headers or {})])

    async def on_database(request: Request, exc: Exception) -> JSONResponse:
        return answer_unexpected(exc, f"{request.method} {request.url.path}")

    async def on_unexpected(request: Request, exc: Exception) -> JSONResponse:
        # The framework re-raises the exception after this answer; kit.limits logs it.
        return unexpected_error()

    app.add_exception_handler(ApiError, on_api_error)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(DBAPIError, on_database)
    app.add_exception_handler(Exception, on_unexpected)
