"""`signalpost send` and `signalpost inbound`: talk to a running server's API.

The server's address is `--base-url`, else `TELNYX_BASE_URL`, else the address `serve` itself
announces (`SIGNALPOST_PUBLIC_URL`, or `SIGNALPOST_HOST`/`SIGNALPOST_PORT`, or the TOML file) plus
`/v2`. Errors name the address used.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer

from signalpost.messages.lifecycle import FINAL_STATUSES
from signalpost.runner import settings_from

FAILED_STATUSES = frozenset({"sending_failed", "delivery_failed", "expired"})

BaseUrlOpt = Annotated[
    str | None,
    typer.Option(
        "--base-url",
        envvar="TELNYX_BASE_URL",
        help="The server's API base URL (default: SIGNALPOST_PUBLIC_URL, or "
        "http://127.0.0.1:SIGNALPOST_PORT, plus /v2).",
        show_default=False,
    ),
]
ApiKeyOpt = Annotated[
    str | None,
    typer.Option("--api-key", envvar="TELNYX_API_KEY", help="API key (else SIGNALPOST_API_KEY)."),
]
ConfigOpt = Annotated[
    Path | None, typer.Option("--config", help="TOML settings file.", envvar="SIGNALPOST_CONFIG")
]


def api_base(base_url: str | None, config: Path | None) -> str:
    """The API base URL (ending in /v2) the command talks to."""
    if base_url:
        return base_url.rstrip("/")
    return settings_from(config).base_url + "/v2"


def api_key_or_exit(api_key: str | None) -> str:
    key = api_key or os.environ.get("SIGNALPOST_API_KEY")
    if not key:
        typer.echo("error: no API key: set TELNYX_API_KEY (or pass --api-key)", err=True)
        raise typer.Exit(2)
    return key


@contextmanager
def reaching(base: str) -> Iterator[None]:
    """Turn transport failures into one line that names the server's address."""
    try:
        yield
    except httpx.TransportError as exc:
        typer.echo(
            f"error: cannot reach signalpost at {base}: {exc or type(exc).__name__}. Is "
            "`signalpost serve` running there? Set --base-url, TELNYX_BASE_URL or "
            "SIGNALPOST_PUBLIC_URL.",
            err=True,
        )
        raise typer.Exit(1) from exc


def fail_on_error(r: httpx.Response, base: str) -> Any:
    """The response's JSON `data`; otherwise its errors, with the address, and exit 1."""
    try:
        body = r.json()
    except ValueError:
        body = None
    if r.status_code == 200 and isinstance(body, dict) and "data" in body:
        return body["data"]
    errors = body.get("errors", []) if isinstance(body, dict) else []
    if r.status_code == 401:
        typer.echo(f"error: the server at {base} refused the API key (HTTP 401).", err=True)
    elif not errors:
        typer.echo(f"error: {base} answered HTTP {r.status_code}: is it signalpost?", err=True)
    for err in errors:
        source = err.get("source") or {}
        where = source.get("pointer") or source.get("parameter")
        typer.echo(
            f"error {err.get('code')}: {err.get('title')}"
            + (f" - {err['detail']}" if err.get("detail") else "")
            + (f" ({where})" if where else ""),
            err=True,
        )
    raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    register_inbound(app)

    @app.command("send")
    def send(
        to: Annotated[str, typer.Option("--to", help="Recipient +E.164 number or short code.")],
        from_: Annotated[
            str | None,
            typer.Option("--from", help="Sender: +E.164, short code or alphanumeric ID."),
        ] = None,
        text: Annotated[str | None, typer.Option("--text", help="Message text.")] = None,
        media_url: Annotated[
            list[str] | None, typer.Option("--media-url", help="Media URL (MMS), repeatable.")
        ] = None,
        profile: Annotated[
            str | None, typer.Option("--profile", help="Messaging profile id (number pool).")
        ] = None,
        base_url: BaseUrlOpt = None,
        api_key: ApiKeyOpt = None,
        config: ConfigOpt = None,
        follow: Annotated[
            bool, typer.Option("--follow/--no-follow", help="Wait for the final status.")
        ] = True,
        timeout: Annotated[float, typer.Option(help="Seconds to follow before giving up.")] = 60.0,
    ) -> None:
        """Send a message; print its id, then each status it moves through. Exits 1 when the
        message is refused or ends failed (sending_failed, delivery_failed, expired)."""
        key = api_key_or_exit(api_key)
        base = api_base(base_url, config)
        body: dict[str, Any] = {"to": to}
        for name, value in (
            ("from", from_),
            ("text", text),
            ("media_urls", media_url),
            ("messaging_profile_id", profile),
        ):
            if value:
                body[name] = value
        headers = {"Authorization": f"Bearer {key}"}
        with httpx.Client(base_url=base, headers=headers, timeout=30) as http, reaching(base):
            data = fail_on_error(http.post("/messages", json=body), base)
            typer.echo(data["id"])
            status = _follow(http, base, data, follow, timeout)
        if status in FAILED_STATUSES:
            typer.echo(f"the message ended {status}", err=True)
            raise typer.Exit(1)
        if follow and status not in FINAL_STATUSES:
            typer.echo("still not final; stopped following", err=True)
            raise typer.Exit(1)


def _follow(
    http: httpx.Client, base: str, data: dict[str, Any], follow: bool, timeout: float
) -> str:
    """Print each status the message reaches until it is final (or `timeout`); the last one."""
    status: str = data["to"][0]["status"]
    typer.echo(f"status: {status}")
    deadline = time.monotonic() + timeout
    while follow and status not in FINAL_STATUSES and time.monotonic() < deadline:
        time.sleep(0.2)
        msg = fail_on_error(http.get(f"/messages/{data['id']}"), base)
        if msg["to"][0]["status"] != status:
            status = msg["to"][0]["status"]
            errors = ", ".join(f"{e['code']} {e['title']}" for e in msg.get("errors", []))
            typer.echo(f"status: {status}" + (f" ({errors})" if errors else ""))
    return status


def register_inbound(app: typer.Typer) -> None:
    @app.command("inbound")
    def inbound(
        from_: Annotated[str, typer.Option("--from", help="The handset writing, +E.164.")],
        to: Annotated[str, typer.Option("--to", help="Your number (+E.164) or short code.")],
        text: Annotated[str | None, typer.Option("--text", help="Message text.")] = None,
        media_url: Annotated[
            list[str] | None, typer.Option("--media-url", help="Media URL, repeatable.")
        ] = None,
        subject: Annotated[str | None, typer.Option("--subject", help="MMS subject.")] = None,
        base_url: BaseUrlOpt = None,
        api_key: ApiKeyOpt = None,
        config: ConfigOpt = None,
    ) -> None:
        """A simulated handset writes to one of your numbers (POST /simulator/inbound); prints
        the message id."""
        key = api_key_or_exit(api_key)
        base = api_base(base_url, config)
        body: dict[str, Any] = {"from": from_, "to": to}
        for name, value in (("text", text), ("media_urls", media_url), ("subject", subject)):
            if value:
                body[name] = value
        root = base.removesuffix("/v2")
        with reaching(root):
            r = httpx.post(
                f"{root}/simulator/inbound",
                json=body,
                headers={"Authorization": f"Bearer {key}"},
                timeout=30,
            )
        data = fail_on_error(r, root)
        typer.echo(data["id"])
        if data.get("autoresponse_type"):
            typer.echo(f"autoresponse_type: {data['autoresponse_type']}")
