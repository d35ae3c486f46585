"""`signalpost send`: send a message through a running server's API and follow its status."""

from __future__ import annotations

import os
import time
from typing import Annotated, Any

import httpx
import typer

from signalpost.messages.lifecycle import FINAL_STATUSES


def register(app: typer.Typer) -> None:
    register_inbound(app)

    @app.command("send")
    def send(
        from_: Annotated[
            str | None,
            typer.Option("--from", help="Sender: +E.164, short code or alphanumeric ID."),
        ] = None,
        to: Annotated[
            str, typer.Option("--to", help="Recipient +E.164 number or short code.")
        ] = "",
        text: Annotated[str | None, typer.Option("--text", help="Message text.")] = None,
        media_url: Annotated[
            list[str] | None, typer.Option("--media-url", help="Media URL (MMS), repeatable.")
        ] = None,
        profile: Annotated[
            str | None, typer.Option("--profile", help="Messaging profile id (number pool).")
        ] = None,
        base_url: Annotated[
            str, typer.Option(envvar="TELNYX_BASE_URL", help="The server's API base URL.")
        ] = "http://127.0.0.1:8080/v2",
        api_key: Annotated[
            str | None, typer.Option(envvar="TELNYX_API_KEY", help="API key.")
        ] = None,
        follow: Annotated[
            bool, typer.Option("--follow/--no-follow", help="Wait for the final status.")
        ] = True,
        timeout: Annotated[float, typer.Option(help="Seconds to follow before giving up.")] = 60.0,
    ) -> None:
        """Send a message; print its id, then each status it moves through."""
        key = api_key or os.environ.get("SIGNALPOST_API_KEY")
        if not key:
            typer.echo("error: set TELNYX_API_KEY (or pass --api-key)", err=True)
            raise typer.Exit(2)
        if not to:
            typer.echo("error: --to is required", err=True)
            raise typer.Exit(2)
        body: dict[str, Any] = {"to": to}
        if from_:
            body["from"] = from_
        if text:
            body["text"] = text
        if media_url:
            body["media_urls"] = media_url
        if profile:
            body["messaging_profile_id"] = profile
        headers = {"Authorization": f"Bearer {key}"}
        with httpx.Client(base_url=base_url.rstrip("/"), headers=headers, timeout=30) as http:
            _send_and_follow(http, body, follow=follow, timeout=timeout)


def _send_and_follow(
    http: httpx.Client, body: dict[str, Any], *, follow: bool, timeout: float
) -> None:
    """POST the message, print its id and status, then each new status until it is final."""
    r = http.post("/messages", json=body)
    if r.status_code != 200:
        for err in r.json().get("errors", []):
            typer.echo(
                f"error {err.get('code')}: {err.get('title')} - {err.get('detail', '')}",
                err=True,
            )
        raise typer.Exit(1)
    data = r.json()["data"]
    typer.echo(data["id"])
    status = data["to"][0]["status"]
    typer.echo(f"status: {status}")
    deadline = time.monotonic() + timeout
    while follow and status not in FINAL_STATUSES and time.monotonic() < deadline:
        time.sleep(0.2)
        msg = http.get(f"/messages/{data['id']}").json()["data"]
        if msg["to"][0]["status"] != status:
            status = msg["to"][0]["status"]
            errors = ", ".join(f"{e['code']} {e['title']}" for e in msg.get("errors", []))
            typer.echo(f"status: {status}" + (f" ({errors})" if errors else ""))
    if follow and status not in FINAL_STATUSES:
        typer.echo("still not final; stopped following", err=True)
        raise typer.Exit(1)


def register_inbound(app: typer.Typer) -> None:
    @app.command("inbound")
    def inbound(
        from_: Annotated[str, typer.Option("--from", help="The handset writing, +E.164.")] = "",
        to: Annotated[str, typer.Option("--to", help="Your number (+E.164) or short code.")] = "",
        text: Annotated[str | None, typer.Option("--text", help="Message text.")] = None,
        media_url: Annotated[
            list[str] | None, typer.Option("--media-url", help="Media URL, repeatable.")
        ] = None,
        subject: Annotated[str | None, typer.Option("--subject", help="MMS subject.")] = None,
        base_url: Annotated[
            str, typer.Option(envvar="TELNYX_BASE_URL", help="The server's API base URL.")
        ] = "http://127.0.0.1:8080/v2",
        api_key: Annotated[
            str | None, typer.Option(envvar="TELNYX_API_KEY", help="API key of the number's owner.")
        ] = None,
    ) -> None:
        """A simulated handset writes to one of your numbers (POST /simulator/inbound); prints the message id."""
        key = api_key or os.environ.get("SIGNALPOST_API_KEY")
        if not key:
            typer.echo("error: set TELNYX_API_KEY (or pass --api-key)", err=True)
            raise typer.Exit(2)
        if not from_ or not to:
            typer.echo("error: --from and --to are required", err=True)
            raise typer.Exit(2)
        body: dict[str, Any] = {"from": from_, "to": to}
        if text:
            body["text"] = text
        if media_url:
            body["media_urls"] = media_url
        if subject:
            body["subject"] = subject
        root = base_url.rstrip("/").removesuffix("/v2")
        r = httpx.post(
            f"{root}/simulator/inbound",
            json=body,
            headers={"Authorization": f"Bearer {key}"},
            timeout=30,
        )
        if r.status_code != 200:
            for err in r.json().get("errors", []):
                typer.echo(
                    f"error {err.get('code')}: {err.get('title')} - {err.get('detail', '')}",
                    err=True,
                )
            raise typer.Exit(1)
        data = r.json()["data"]
        typer.echo(data["id"])
        if data.get("autoresponse_type"):
            typer.echo(f"autoresponse_type: {data['autoresponse_type']}")
