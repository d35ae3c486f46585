"""`signalpost carriers list|status`: the carriers, routes and SMPP binds."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from signalpost.context import AppContext


def register(app: typer.Typer) -> None:
    carriers = typer.Typer(no_args_is_help=True, help="Carriers, routes and SMPP binds.")
    app.add_typer(carriers, name="carriers")

    @carriers.command("list")
    def list_(
        as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
        config: Annotated[Path | None, typer.Option("--config")] = None,
    ) -> None:
        """The configured carriers, their binds and the route table."""
        from signalpost.carriers.status import configured
        from signalpost.runner import settings_from

        found = configured(settings_from(config))
        if as_json:
            typer.echo(json.dumps(found, indent=2))
            return
        typer.echo(f"default carrier: {found['default_carrier']}")
        for c in found["carriers"]:
            fallback = f" (fallback: {c['fallback']})" if c.get("fallback") else ""
            typer.echo(f"{c['name']}: {c['kind']}{fallback}")
            for b in c["binds"]:
                typer.echo(
                    f"  {b['key']}  {b['system_id']}@{b['host']}:{b['port']}  "
                    f"{b['bind_mode']}  window {b['window']}"
                )
        for i, r in enumerate(found["routes"]):
            typer.echo(f"route {i}: {r}")

    @carriers.command("status")
    def status(
        as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
        config: Annotated[Path | None, typer.Option("--config")] = None,
        database_url: Annotated[str | None, typer.Option("--database-url")] = None,
    ) -> None:
        """Each SMPP bind: state, holder process, in flight, submitted/failed, last receipt/error."""
        from signalpost.carriers.status import bind_status
        from signalpost.runner import run_with_context, settings_from

        settings = settings_from(config, database_url=database_url)

        async def go(ctx: AppContext) -> list[dict[str, Any]]:
            return await bind_status(ctx.settings, ctx.db)

        rows = run_with_context(settings, go)
        if as_json:
            typer.echo(json.dumps(rows, indent=2))
            return
        if not rows:
            typer.echo("no SMPP binds configured")
        for r in rows:
            typer.echo(
                f"{r['bind']}  {r['state']}  holder={r['holder'] or '-'}  "
                f"in_flight={r['in_flight']}/{r['window']}  submitted={r['submitted']}  "
                f"failed={r['failed']}  last_receipt={r['last_receipt_at'] or '-'}  "
                f"last_error={r['last_error'] or '-'}"
            )
