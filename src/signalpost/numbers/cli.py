"""`signalpost numbers …`: add numbers and short codes, list them, WhatsApp and rate-limit switches."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, TypeVar

import typer
from pydantic import ValidationError
from sqlalchemy.engine import RowMapping

from signalpost.context import AppContext
from signalpost.kit.db import UnitOfWork
from signalpost.kit.errors import ApiError
from signalpost.kit.terminal import humane, print_table
from signalpost.numbers import orders, service
from signalpost.numbers.schemas import NumberOrderCreate
from signalpost.runner import run_with_context, settings_from

T = TypeVar("T")

ConfigOpt = Annotated[Path | None, typer.Option("--config", help="TOML settings file.")]
DatabaseOpt = Annotated[str | None, typer.Option("--database-url", help="SQLAlchemy URL.")]
OrgOpt = Annotated[
    str | None, typer.Option("--org", help="Organization name or id (default: the first).")
]
ProfileOpt = Annotated[
    str | None, typer.Option("--profile", help="Messaging profile id to assign to.")
]


def _run(
    config: Path | None,
    database_url: str | None,
    org: str | None,
    fn: Callable[[UnitOfWork, str], Awaitable[T]],
) -> T:
    """Run `fn(uow, organization_id)` in one unit of work; errors are printed, exit code 1 or 2."""
    from signalpost.accounts import service as accounts

    settings = settings_from(config, database_url=database_url)

    async def go(ctx: AppContext) -> T:
        async with ctx.db.transaction() as uow:
            owner = await accounts.find_organization(uow, org)
            if owner is None:
                typer.echo(f"error: no organization {org!r}", err=True)
                raise typer.Exit(1)
            return await fn(uow, owner.id)

    try:
        return run_with_context(settings, go)
    except ApiError as exc:
        typer.echo(f"error: {exc.detail or exc.title}", err=True)
        raise typer.Exit(1 if exc.status == 404 else 2) from exc


NUMBER_COLUMNS = ["ID", "NUMBER", "TYPE", "COUNTRY", "FLAGS", "RATE", "PROFILE"]


def _number_row(row: RowMapping) -> tuple[str, ...]:
    flags = [
        f for f, on in (("mobile", row["mobile"]), ("whatsapp", row["whatsapp_enabled"])) if on
    ]
    rate = f"{row['rate_limit']:g}/s" if row["rate_limit"] is not None else "default"
    return (
        row["id"],
        row["phone_number"],
        row["type"],
        row["country_code"],
        " ".join(flags) or "-",
        rate,
        row["messaging_profile_id"] or "-",
    )


def _print_numbers(rows: list[RowMapping]) -> None:
    print_table(NUMBER_COLUMNS, [_number_row(r) for r in rows], empty="(no numbers)")


def register(app: typer.Typer) -> None:
    numbers = typer.Typer(no_args_is_help=True, help="Phone numbers, short codes, sender settings.")
    app.add_typer(numbers, name="numbers")

    @numbers.command("add")
    def add(
        phone_numbers: Annotated[list[str], typer.Argument(help="+E.164 numbers to add.")],
        profile: ProfileOpt = None,
        mobile: Annotated[
            bool, typer.Option("--mobile", help="Mark the numbers as mobile numbers.")
        ] = False,
        org: OrgOpt = None,
        config: ConfigOpt = None,
        database_url: DatabaseOpt = None,
    ) -> None:
        """Add numbers to an organization's inventory (like a completed number order)."""
        try:
            body = NumberOrderCreate.model_validate(
                {
                    "phone_numbers": [{"phone_number": n} for n in phone_numbers],
                    "messaging_profile_id": profile,
                }
            )
        except ValidationError as exc:
            typer.echo(f"error: {humane(exc)}", err=True)
            raise typer.Exit(2) from exc

        async def go(uow: UnitOfWork, org_id: str) -> list[RowMapping]:
            order = await orders.create_order(uow, org_id, body, mobile=mobile)
            return [
                await service.require_number(uow, org_id, item["id"])
                for item in order["phone_numbers"]
            ]

        _print_numbers(_run(config, database_url, org, go))

    @numbers.command("list")
    def list_numbers(
        org: OrgOpt = None, config: ConfigOpt = None, database_url: DatabaseOpt = None
    ) -> None:
        """List an organization's numbers (id, number, type, country, flags, profile)."""

        async def go(uow: UnitOfWork, org_id: str) -> list[RowMapping]:
            return await service.list_all_numbers(uow, org_id)

        _print_numbers(_run(config, database_url, org, go))

    @numbers.command("add-short-code")
    def add_short_code(
        code: Annotated[str, typer.Argument(help="The short code, 3 to 8 digits.")],
        country: Annotated[str, typer.Option("--country", help="ISO country code.")] = "US",
        profile: ProfileOpt = None,
        org: OrgOpt = None,
        config: ConfigOpt = None,
        database_url: DatabaseOpt = None,
    ) -> None:
        """Provision a short code for an organization and print its id."""

        async def go(uow: UnitOfWork, org_id: str) -> RowMapping:
            return await service.add_short_code(
                uow, org_id, code, country_code=country.upper(), profile_id=profile
            )

        row = _run(config, database_url, org, go)
        typer.echo(f"{row['id']}  {row['short_code']}  {row['country_code']}")

    @numbers.command("whatsapp")
    def whatsapp(
        action: Annotated[str, typer.Argument(help="enable or disable")],
        phone_number: Annotated[str, typer.Argument(help="The +E.164 number.")],
        org: OrgOpt = None,
        config: ConfigOpt = None,
        database_url: DatabaseOpt = None,
    ) -> None:
        """Enable or disable WhatsApp sending from a number."""
        if action not in ("enable", "disable"):
            typer.echo("error: the action is 'enable' or 'disable'", err=True)
            raise typer.Exit(2)

        async def go(uow: UnitOfWork, org_id: str) -> RowMapping:
            return await service.set_whatsapp(uow, org_id, phone_number, action == "enable")

        row = _run(config, database_url, org, go)
        state = "enabled" if row["whatsapp_enabled"] else "disabled"
        typer.echo(f"{row['phone_number']}: whatsapp {state}")

    @numbers.command("rate-limit")
    def rate_limit(
        sender: Annotated[str, typer.Argument(help="A +E.164 number or a short code.")],
        rate: Annotated[str, typer.Argument(help="Messages per second, or 'none' to clear.")],
        org: OrgOpt = None,
        config: ConfigOpt = None,
        database_url: DatabaseOpt = None,
    ) -> None:
        """Override the sending rate of one sender (default: the per-type rate in settings)."""
        value: float | None
        if rate.lower() == "none":
            value = None
        else:
            try:
                value = float(rate)
            except ValueError:
                value = -1.0
            if not value > 0 or value == float("inf"):
                typer.echo("error: the rate is a positive number or 'none'", err=True)
                raise typer.Exit(2)

        async def go(uow: UnitOfWork, org_id: str) -> str:
            return await service.set_rate_limit(uow, org_id, sender, value)

        what = _run(config, database_url, org, go)
        typer.echo(f"{what}: {'default rate' if value is None else f'{value:g} msg/s'}")
