"""`signalpost optouts list|add|remove`: operator tools for imports and support cases.

They work on the database directly (any organization). A block is the pair (handset, messaging
profile); `--number` records which of the profile's numbers the handset wrote to.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from signalpost.context import AppContext
from signalpost.kit.clock import iso
from signalpost.kit.errors import ApiError
from signalpost.kit.terminal import print_table
from signalpost.optouts import service
from signalpost.optouts.repository import OptoutQuery
from signalpost.runner import run_with_context, settings_from

ConfigOpt = Annotated[Path | None, typer.Option("--config", envvar="SIGNALPOST_CONFIG")]
DatabaseOpt = Annotated[str | None, typer.Option("--database-url", help="SQLAlchemy URL.")]
ProfileOpt = Annotated[str, typer.Option("--profile", help="Messaging profile id.")]
HandsetOpt = Annotated[str, typer.Option("--handset", help="The handset that opted out, +E.164.")]


def register(app: typer.Typer) -> None:
    optouts = typer.Typer(no_args_is_help=True, help="Opt-outs (STOP blocks).")
    app.add_typer(optouts, name="optouts")

    @optouts.command("list")
    def list_(
        profile: Annotated[
            str | None, typer.Option("--profile", help="Messaging profile id.")
        ] = None,
        handset: Annotated[str | None, typer.Option("--handset", help="Handset, +E.164.")] = None,
        number: Annotated[str | None, typer.Option("--number", help="Number written to.")] = None,
        limit: Annotated[int, typer.Option(help="At most this many, newest first.")] = 100,
        config: ConfigOpt = None,
        database_url: DatabaseOpt = None,
    ) -> None:
        """List opt-outs: created, profile, handset, number written to, keyword."""

        settings = settings_from(config, database_url=database_url)
        query = OptoutQuery(messaging_profile_id=profile, handset=handset, number=number)

        async def go(ctx: AppContext) -> list[Any]:
            async with ctx.db.transaction() as uow:
                rows, _ = await service.list_optouts(uow, None, query, offset=0, limit=limit)
            return rows

        rows = run_with_context(settings, go)
        print_table(
            ["CREATED", "MESSAGING PROFILE", "HANDSET", "NUMBER", "KEYWORD"],
            [
                (
                    iso(r["created_at"]),
                    r["messaging_profile_id"],
                    r["from_number"],
                    r["to_number"],
                    r["keyword"] or "-",
                )
                for r in rows
            ],
            empty="(no opt-outs)",
        )

    @optouts.command("add")
    def add(
        profile: ProfileOpt,
        handset: HandsetOpt,
        number: Annotated[str, typer.Option("--number", help="The profile's number written to.")],
        keyword: Annotated[str, typer.Option(help="The keyword to record.")] = "STOP",
        config: ConfigOpt = None,
        database_url: DatabaseOpt = None,
    ) -> None:
        """Block a handset for a messaging profile (as if it had written the keyword)."""

        settings = settings_from(config, database_url=database_url)

        async def go(ctx: AppContext) -> Any:
            async with ctx.db.transaction() as uow:
                return await service.add_block(
                    uow,
                    profile_id=profile,
                    handset=handset.strip(),
                    number=number.strip(),
                    keyword=keyword.strip().upper() or None,
                )

        try:
            row = run_with_context(settings, go)
        except ApiError as exc:
            typer.echo(f"error: {exc.detail}", err=True)
            raise typer.Exit(1) from exc
        typer.echo(f"blocked {row['from_number']} for profile {row['messaging_profile_id']}")

    @optouts.command("remove")
    def remove(
        profile: ProfileOpt,
        handset: HandsetOpt,
        config: ConfigOpt = None,
        database_url: DatabaseOpt = None,
    ) -> None:
        """Remove the block of a handset for a messaging profile (as if it had written START)."""

        settings = settings_from(config, database_url=database_url)

        async def go(ctx: AppContext) -> bool:
            async with ctx.db.transaction() as uow:
                return await service.opt_in(uow, profile, handset.strip())

        if not run_with_context(settings, go):
            typer.echo(f"error: {handset} is not opted out of profile {profile}", err=True)
            raise typer.Exit(1)
        typer.echo("removed")
