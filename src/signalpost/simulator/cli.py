"""`signalpost simulator chaos …`: read or set the simulator's failure probabilities."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError

from signalpost.carriers.simulator import Chaos, load_chaos, save_chaos
from signalpost.context import AppContext
from signalpost.kit.terminal import humane, print_table
from signalpost.runner import run_with_context, settings_from


def register(app: typer.Typer) -> None:
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
        org: Annotated[
            str | None,
            typer.Option("--org", help="Organization name or id (default: the first)."),
        ] = None,
        config: Annotated[Path | None, typer.Option("--config")] = None,
        database_url: Annotated[str | None, typer.Option("--database-url")] = None,
    ) -> None:
        """Show an organization's chaos setting, or change the values given."""
        from signalpost.accounts.service import find_organization

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
            async with ctx.db.transaction() as uow:
                found = await find_organization(uow, org)
            if found is None:
                raise ValueError(f"no organization {org!r}")
            current = Chaos() if reset else await load_chaos(ctx.db, found.id)
            if changes or reset:
                current = Chaos.model_validate({**current.model_dump(), **changes})
                await save_chaos(ctx.db, found.id, current)
            return current

        try:
            result = run_with_context(settings, go)
        except ValidationError as exc:
            for line in humane(exc, options=True).splitlines():
                typer.echo(f"error: {line}", err=True)
            raise typer.Exit(2) from exc
        print_table(["SETTING", "VALUE"], result.model_dump().items())
