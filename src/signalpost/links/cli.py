"""`signalpost links domains add|list|remove`: the link domains organizations may shorten links on."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from signalpost.context import AppContext
from signalpost.kit.terminal import print_table
from signalpost.runner import run_with_context, settings_from

ConfigOpt = Annotated[Path | None, typer.Option("--config", help="TOML settings file.")]
DatabaseOpt = Annotated[str | None, typer.Option("--database-url", help="SQLAlchemy URL.")]
OrgOpt = Annotated[
    str | None,
    typer.Option("--org", help="Organization name or id (default: every organization)."),
]


def register(app: typer.Typer) -> None:
    links = typer.Typer(no_args_is_help=True, help="Link shortening.")
    domains = typer.Typer(
        no_args_is_help=True,
        help="Link domains (the server's own public host is always available).",
    )
    links.add_typer(domains, name="domains")
    app.add_typer(links, name="links")

    @domains.command("add")
    def add(
        domain: Annotated[str, typer.Argument(help="e.g. links.example.com or http://host:port")],
        org: OrgOpt = None,
        scheme: Annotated[
            str | None, typer.Option(help="http or https (default: https, or as written).")
        ] = None,
        use_case: Annotated[str, typer.Option(help="Shown as use_case.")] = "link_shortening",
        config: ConfigOpt = None,
        database_url: DatabaseOpt = None,
    ) -> None:
        """Make a domain (pointed at this server) usable for short links."""
        from signalpost.links import service

        settings = settings_from(config, database_url=database_url)

        async def go(ctx: AppContext) -> dict[str, Any]:
            async with ctx.db.transaction() as uow:
                org_id = await _org_id(uow, org)
                return await service.add_domain(
                    uow, domain, organization_id=org_id, scheme=scheme, use_case=use_case
                )

        try:
            row = run_with_context(settings, go)
        except service.DomainError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2) from exc
        owner = row["organization_id"] or "all organizations"
        typer.echo(f"{row['id']}  {row['scheme']}://{row['url_domain']}  ({owner})")

    @domains.command("list")
    def list_(
        org: OrgOpt = None, config: ConfigOpt = None, database_url: DatabaseOpt = None
    ) -> None:
        """List link domains (those one organization may use, with --org)."""
        from signalpost.links import service

        settings = settings_from(config, database_url=database_url)

        async def go(ctx: AppContext) -> list[Any]:
            async with ctx.db.transaction() as uow:
                return list(await service.admin_domains(uow, await _org_id(uow, org)))

        rows = run_with_context(settings, go)
        print_table(
            ["ID", "DOMAIN", "ORGANIZATION"],
            [
                ("(built in)", f"{settings.base_url}/l/", "all organizations"),
                *(
                    (
                        r["id"],
                        f"{r['scheme']}://{r['url_domain']}",
                        r["organization_id"] or "all organizations",
                    )
                    for r in rows
                ),
            ],
        )

    @domains.command("remove")
    def remove(
        domain: Annotated[str, typer.Argument(help="The domain or its id.")],
        org: OrgOpt = None,
        config: ConfigOpt = None,
        database_url: DatabaseOpt = None,
    ) -> None:
        """Remove a link domain. Short links already sent on it keep resolving by their code."""
        from signalpost.links import service

        settings = settings_from(config, database_url=database_url)

        async def go(ctx: AppContext) -> int:
            async with ctx.db.transaction() as uow:
                return await service.remove_domain(uow, domain, await _org_id(uow, org))

        if run_with_context(settings, go) == 0:
            typer.echo(f"error: no link domain {domain!r}", err=True)
            raise typer.Exit(1)
        typer.echo("removed")


async def _org_id(uow: Any, org: str | None) -> str | None:
    if org is None:
        return None
    from signalpost.accounts import service as accounts

    found = await accounts.find_organization(uow, org)
    if found is None:
        typer.echo(f"error: no organization {org!r}", err=True)
        raise typer.Exit(1)
    return found.id
