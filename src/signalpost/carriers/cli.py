"""`signalpost carriers list|status` (carriers, routes, SMPP binds) and `signalpost simulator chaos …`
(the simulator's failure probabilities)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from signalpost.carriers.simulator import Chaos, load_chaos, save_chaos
from signalpost.context import AppContext


def register(app: typer.Typer) -> None:
    _register_carriers(app)
    sim = typer.Typer(no_args_is_help=True, help="The carrier simulator.")
    app.add_typer(sim, name="simulator")

    @sim.command("chaos")
    def chaos(
        sending_failed: Annotated[float | None, typer.Option(help="Probability 0-1.")] = None,
        delivery_failed: Annotated[float | None, typer.Option(help="Probability 0-1.")] = None,
        delivery_unconfirmed: Annotated[float | None, typer.Option(help="Probability 0-1.")] = None,
        expired: Annotated[float | None, typer.Option(help="Probability 0-1.")] = None,
        throttled: Annotated[float | None, typer.Option(help="Probability 0-1.")] = None,
        extra_latency: Annotated[
            float | None, typer.Option(help="Seconds added to receipts.")
        ] = None,
        reset: Annotated[bool, typer.Option("--reset", help="Back to no chaos.")] = False,
        config: Annotated[Path | None, typer.Option("--config")] = None,
        database_url: Annotated[str | None, typer.Option("--database-url")] = None,
    ) -> None:
        """Show the chaos setting, or change the values given."""
        from signalpost.cli import run_with_context, settings_from

        settings = settings_from(config, database_url=database_url)
        changes = {
            k: v
            for k, v in {
                "sending_failed": sending_failed,
                "delivery_failed": delivery_failed,
                "delivery_unconfirmed": delivery_unconfirmed,
                "expired": expired,
                "throttled": throttled,
                "extra_latency": extra_latency,
            }.items()
            if v is not None
        }

        async def go(ctx: AppContext) -> Chaos:
            current = Chaos() if reset else await load_chaos(ctx.db)
            if changes or reset:
                current = Chaos.model_validate({**current.model_dump(), **changes})
                await save_chaos(ctx.db, current)
            return current

        try:
            result = run_with_context(settings, go)
        except ValueError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2) from exc
        for key, value in result.model_dump().items():
            typer.echo(f"{key}: {value}")


def _register_carriers(app: typer.Typer) -> None:
    carriers = typer.Typer(no_args_is_help=True, help="Carriers, routes and SMPP binds.")
    app.add_typer(carriers, name="carriers")

    @carriers.command("list")
    def list_(
        as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
        config: Annotated[Path | None, typer.Option("--config")] = None,
    ) -> None:
        """The configured carriers, their binds and the route table."""
        from signalpost.carriers.status import configured
        from signalpost.cli import settings_from

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
        from signalpost.cli import run_with_context, settings_from

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
