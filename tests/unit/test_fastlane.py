"""The fast lane's own answers: a handler's unexpected error is a 500 in the error envelope (the
lane sits outside the framework's error handling), a declined request reaches the application with
its body."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping

import httpx
import pytest
from starlette.responses import JSONResponse, Response
from starlette.types import Receive, Scope, Send

from signalpost.kit.fastlane import FastLane


async def application(scope: Scope, receive: Receive, send: Send) -> None:
    message = await receive()
    await JSONResponse({"app": True, "body": message["body"].decode()})(scope, receive, send)


async def broken(scope: Scope, headers: Mapping[str, str], raw: bytes) -> Response | None:
    raise RuntimeError("the database went away")


async def declines(scope: Scope, headers: Mapping[str, str], raw: bytes) -> Response | None:
    return None


def post(path: str, body: bytes) -> httpx.Response:
    lane = FastLane(application, routes={("POST", "/broken"): broken, ("POST", "/no"): declines})

    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=lane)
        async with httpx.AsyncClient(transport=transport, base_url="http://lane") as client:
            return await client.post(path, content=body)

    return asyncio.run(go())


def test_an_unexpected_error_in_a_handler_is_a_500_in_the_envelope(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.ERROR, logger="signalpost.errors"):
        r = post("/broken", b"{}")
    assert r.status_code == 500
    assert r.headers["connection"] == "close"
    assert r.json()["errors"][0]["code"] == "10007"
    assert "the database went away" in caplog.text


def test_a_declined_request_reaches_the_application_with_its_body() -> None:
    assert post("/no", b'{"a":1}').json() == {"app": True, "body": '{"a":1}'}
    assert post("/elsewhere", b"x").json() == {"app": True, "body": "x"}
