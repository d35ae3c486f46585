"""One-shot commands: settings from the command line's flags, and a running context for one call.

The feature packages' commands (`signalpost.<feature>.cli`) use these; `signalpost.cli` loads those
commands, so they must not import it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import typer

from signalpost.context import AppContext
from signalpost.settings import Settings, load_settings

T = TypeVar("T")


def settings_from(config: Path | None, **overrides: Any) -> Settings:
    try:
        return load_settings(config, **overrides)
    except Exception as exc:
        typer.echo(f"error: invalid settings: {exc}", err=True)
        raise typer.Exit(2) from exc


def run_with_context(settings: Settings, fn: Callable[[AppContext], Awaitable[T]]) -> T:
    """Migrate, bootstrap, run `fn` with a context, dispose. For one-shot commands."""
    from signalpost.app import build_context, close_resources, prepare

    async def go() -> T:
        ctx = build_context(settings)
        try:
            await prepare(ctx)
            return await fn(ctx)
        finally:
            await close_resources(ctx)
            await ctx.db.dispose()

    return asyncio.run(go())
