"""One-shot commands: settings from the command line's flags, and a running context for one call.

The feature packages' commands (`signalpost.<feature>.cli`) use these; `signalpost.cli` loads those
commands, so they must not import it. Commands resolve the database exactly as `serve` does (the
same settings sources), say which one they use, and never create one (`serve`, `worker` and
`db upgrade` do).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import typer
from pydantic import ValidationError

from signalpost.context import AppContext
from signalpost.kit import migrate
from signalpost.kit.terminal import humane
from signalpost.settings import Settings, load_settings

T = TypeVar("T")


def settings_from(config: Path | None, **overrides: Any) -> Settings:
    """The settings exactly as `serve` reads them: flags, then `SIGNALPOST_*` variables, then the
    TOML file (`--config` or `SIGNALPOST_CONFIG`), then the defaults."""
    try:
        return load_settings(config, **overrides)
    except ValidationError as exc:
        typer.echo("error: invalid settings:", err=True)
        for line in humane(exc, env_prefix="SIGNALPOST_").splitlines():
            typer.echo(f"  {line}", err=True)
        raise typer.Exit(2) from exc
    except Exception as exc:
        typer.echo(f"error: invalid settings: {exc}", err=True)
        raise typer.Exit(2) from exc


def database_source(settings: Settings) -> str:
    """Where the database URL in force came from."""
    if os.environ.get("SIGNALPOST_DATABASE_URL") == settings.database_url:
        return "SIGNALPOST_DATABASE_URL"
    if settings.config_file is not None:
        try:
            text = settings.config_file.read_text()
        except OSError:
            text = ""
        if "database_url" in text:
            return f"config file {settings.config_file}"
    if settings.database_url == Settings.model_fields["database_url"].default:
        return "default"
    return "--database-url"


def _sqlite_file(url: str) -> Path | None:
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    name = parsed.database
    if parsed.get_backend_name() != "sqlite" or not name or name == ":memory:":
        return None
    return None if name.startswith("file:") else Path(name)


def _sqlite_has_schema(path: Path) -> bool:
    import sqlite3

    with contextlib.closing(sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)) as db:
        found = db.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'alembic_version'"
        ).fetchone()
    return found is not None


def _no_database(settings: Settings, why: str) -> typer.Exit:
    typer.echo(
        f"error: {why}: {settings.safe_database_url} ({database_source(settings)}).\n"
        "  Start the server once (`signalpost serve`) or run `signalpost db upgrade` to create "
        "it, or point --database-url / SIGNALPOST_DATABASE_URL / --config at the database "
        "`serve` uses.",
        err=True,
    )
    return typer.Exit(1)


async def _require_database(ctx: AppContext) -> None:
    """The database must exist and hold a signalpost schema: nothing is created here."""
    settings = ctx.settings
    path = _sqlite_file(settings.database_url)
    if path is not None and not path.exists():
        raise _no_database(settings, "no database file")
    try:
        # A SQLite file is looked at read-only: opening it through the engine would write to it.
        present = _sqlite_has_schema(path) if path else await migrate.has_schema(ctx.db)
    except Exception as exc:
        typer.echo(f"error: cannot open the database {settings.safe_database_url}: {exc}", err=True)
        raise typer.Exit(1) from exc
    if not present:
        raise _no_database(settings, "the database has no signalpost schema")


def run_with_context(
    settings: Settings,
    fn: Callable[[AppContext], Awaitable[T]],
    *,
    create: bool = False,
) -> T:
    """Check the database (or, with `create`, create it), migrate, bootstrap, run `fn` with a
    context, dispose. For one-shot commands; says which database it uses (on stderr)."""
    from signalpost.app import build_context, close_resources, prepare

    typer.echo(f"database: {settings.safe_database_url} ({database_source(settings)})", err=True)

    async def go() -> T:
        ctx = build_context(settings)
        try:
            if not create:
                await _require_database(ctx)
            await prepare(ctx)
            return await fn(ctx)
        finally:
            await close_resources(ctx)
            await ctx.db.dispose()

    return asyncio.run(go())
