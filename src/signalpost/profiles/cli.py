"""`signalpost profiles list|create`: messaging profiles from the command line."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError
from sqlalchemy.engine import RowMapping

from signalpost.context import AppContext
from signalpost.kit.errors import ApiError
from signalpost.kit.pagination import Page
from signalpost.kit.terminal import humane, print_table
from signalpost.profiles import service
from signalpost.profiles.repository import NameFilter
from signalpost.profiles.schemas import ProfileCreate
from signalpost.runner import run_with_context, settings_from

ConfigOpt = Annotated[Path | None, typer.Option("--config", help="TOML settings file.")]
DatabaseOpt = Annotated[str | None, typer.Option("--database-url", help="SQLAlchemy URL.")]
OrgOpt = Annotated[
    str | None, typer.Option("--org", help="Organization name or id (default: the first).")
]


def _row(row: RowMapping) -> tuple[str, ...]:
    destinations = ",".join(row["whitelisted_destinations"] or [])
    state = "enabled" if row["enabled"] else "disabled"
    return (row["id"], row["name"], destinations, state, row["webhook_url"] or "-")


def register(app: typer.Typer) -> None:
    profiles = typer.Typer(no_args_is_help=True, help="Messaging profiles.")
    app.add_typer(profiles, name="profiles")

    @profiles.command("list")
    def list_profiles(
        org: OrgOpt = None, config: ConfigOpt = None, database_url: DatabaseOpt = None
    ) -> None:
        """List an organization's messaging profiles (id, name, destinations, state, webhook)."""
        from signalpost.accounts import service as accounts

        settings = settings_from(config, database_url=database_url)

        async def go(ctx: AppContext) -> list[RowMapping] | None:
            async with ctx.db.transaction() as uow:
                owner = await accounts.find_organization(uow, org)
                if owner is None:
                    return None
                rows, _ = await service.list_profiles(uow, owner, NameFilter(), Page(1, 10_000))
                return rows

        rows = run_with_context(settings, go)
        if rows is None:
            typer.echo(f"error: no organization {org!r}", err=True)
            raise typer.Exit(1)
        print_table(
            ["ID", "NAME", "DESTINATIONS", "STATE", "WEBHOOK URL"],
            [_row(r) for r in rows],
            empty="(no messaging profiles)",
        )

    @profiles.command("create")
    def create_profile(
        name: str,
        destinations: Annotated[
            str, typer.Option("--destinations", help="Comma-separated country codes, or '*'.")
        ] = "*",
        webhook_url: Annotated[str | None, typer.Option("--webhook-url")] = None,
        webhook_failover_url: Annotated[str | None, typer.Option("--webhook-failover-url")] = None,
        org: OrgOpt = None,
        config: ConfigOpt = None,
        database_url: DatabaseOpt = None,
    ) -> None:
        """Create a messaging profile and print its id."""
        from signalpost.accounts import service as accounts

        fields: dict[str, Any] = {
            "name": name,
            "whitelisted_destinations": [d.strip() for d in destinations.split(",") if d.strip()],
        }
        if webhook_url is not None:
            fields["webhook_url"] = webhook_url
        if webhook_failover_url is not None:
            fields["webhook_failover_url"] = webhook_failover_url
        try:
            body = ProfileCreate.model_validate(fields)
        except ValidationError as exc:
            for line in humane(exc).splitlines():
                typer.echo(f"error: {line}", err=True)
            raise typer.Exit(2) from exc
        settings = settings_from(config, database_url=database_url)

        async def go(ctx: AppContext) -> RowMapping | None:
            async with ctx.db.transaction() as uow:
                owner = await accounts.find_organization(uow, org)
                if owner is None:
                    return None
                return await service.create_profile(uow, owner, body, settings=settings)

        try:
            row = run_with_context(settings, go)
        except ApiError as exc:
            typer.echo(f"error: {exc.detail}", err=True)
            raise typer.Exit(2) from exc
        if row is None:
            typer.echo(f"error: no organization {org!r}", err=True)
            raise typer.Exit(1)
        typer.echo(row["id"])
