"""The `signalpost` command line: serve, worker, db, orgs, keys and the features' own commands."""

from __future__ import annotations

import asyncio
import gc
import importlib
import logging
import signal
from pathlib import Path
from typing import Annotated, Any

import typer

from signalpost.accounts import repository as accounts_repo
from signalpost.accounts import service as accounts
from signalpost.context import AppContext
from signalpost.kit import logs, migrate
from signalpost.kit.terminal import print_table
from signalpost.runner import database_source as database_source
from signalpost.runner import run_with_context as run_with_context
from signalpost.runner import settings_from as settings_from
from signalpost.settings import Settings

app = typer.Typer(
    no_args_is_help=True, help="signalpost: a self-hosted Telnyx-compatible messaging server."
)
db_app = typer.Typer(no_args_is_help=True, help="Database schema.")
orgs_app = typer.Typer(no_args_is_help=True, help="Organizations.")
keys_app = typer.Typer(no_args_is_help=True, help="API keys and the webhook signing key.")
app.add_typer(db_app, name="db")
app.add_typer(orgs_app, name="orgs")
app.add_typer(keys_app, name="keys")

ConfigOpt = Annotated[
    Path | None, typer.Option("--config", help="TOML settings file.", envvar="SIGNALPOST_CONFIG")
]
DatabaseOpt = Annotated[str | None, typer.Option("--database-url", help="SQLAlchemy URL.")]


def banner(settings: Settings, boot: accounts.Bootstrap, workers: int) -> str:
    key = (
        boot.api_key
        or settings.api_key
        or "<the key printed at first start; or run: signalpost keys create>"
    )
    return "\n".join(
        [
            "",
            f"signalpost is listening on {settings.base_url}  (database: {settings.safe_database_url}, "
            f"carrier: {settings.carrier}, workers: {workers})",
            "Point the Telnyx SDKs at it:",
            f"  export TELNYX_BASE_URL={settings.base_url}/v2",
            f"  export TELNYX_API_KEY={key}",
            f"  export TELNYX_PUBLIC_KEY={boot.organization.public_key}",
            f"Web inbox: {settings.base_url}/inbox   API docs: {settings.base_url}/docs",
            "",
        ]
    )


def tune_gc() -> None:
    """Collect garbage less often in long-running server processes.

    Every request and every job allocates thousands of short-lived objects; with the default
    thresholds the collector runs hundreds of times a second under load, for about a tenth of the
    CPU. Objects alive at start-up (modules, the application) are frozen out of collections.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)


@app.command()
def serve(
    config: ConfigOpt = None,
    host: Annotated[str | None, typer.Option(help="Listen address.")] = None,
    port: Annotated[int | None, typer.Option(help="Listen port.")] = None,
    database_url: DatabaseOpt = None,
    no_workers: Annotated[bool, typer.Option("--no-workers", help="Serve the API only.")] = False,
    workers: Annotated[int | None, typer.Option(help="In-process worker tasks.")] = None,
) -> None:
    """Apply migrations and serve the API (with in-process workers unless --no-workers)."""
    import uvicorn

    from signalpost.app import create_app
    from signalpost.kit.httpserver import http_protocol

    settings = settings_from(
        config,
        host=host,
        port=port,
        database_url=database_url,
        workers=0 if no_workers else workers,
    )
    application = create_app(settings)

    def on_ready(boot: accounts.Bootstrap) -> None:
        if settings.log_format == "json":  # every output line is a JSON object
            logging.getLogger("signalpost").info(
                "signalpost is listening on %s",
                settings.base_url,
                extra={
                    "base_url": settings.base_url,
                    "database": settings.safe_database_url,
                    "carrier": settings.carrier,
                    "workers": settings.workers,
                    "public_key": boot.organization.public_key,
                },
            )
            return
        print(banner(settings, boot, settings.workers), flush=True)

    application.state.on_ready = on_ready
    tune_gc()
    uvicorn.run(
        application,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        log_config=logs.log_config(settings.log_level, settings.log_format),
        # Access lines are logged at info: above it, uvicorn would still format each line's
        # arguments for a logger that drops them.
        access_log=settings.log_level.lower() in ("info", "debug", "trace"),
        timeout_graceful_shutdown=10,
        http=http_protocol(settings.max_header_bytes),
    )


@app.command()
def worker(
    config: ConfigOpt = None,
    database_url: DatabaseOpt = None,
    count: Annotated[
        int | None, typer.Option(help="Worker tasks per lane (sends, webhooks) in this process.")
    ] = None,
) -> None:
    """Run job workers only (scale out: run several, on PostgreSQL). Stops cleanly on SIGTERM."""
    from signalpost.app import build_workers
    from signalpost.retention import service as retention

    settings = settings_from(config, database_url=database_url)
    logs.configure(settings.log_level, settings.log_format)
    n = count if count is not None else max(settings.workers, 1)

    async def go(ctx: AppContext) -> None:
        workers = build_workers(ctx, n)
        loop = asyncio.get_running_loop()

        def stop_all() -> None:
            for w in workers:
                w.stop()

        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop_all)
        started = f"signalpost worker: {n} task(s) per lane on {settings.safe_database_url}"
        if settings.log_format == "json":
            logging.getLogger("signalpost").info(started)
        else:
            print(started, flush=True)
        from signalpost.carriers import start_carriers

        await start_carriers(ctx)  # this process takes part in holding the SMPP binds
        stop_sweep = asyncio.Event()
        sweep = asyncio.create_task(retention.sweep_forever(ctx.db, settings, stop_sweep))
        await asyncio.gather(*(w.run() for w in workers))
        stop_sweep.set()
        await sweep

    tune_gc()
    run_with_context(settings, go, create=True)  # like `serve`, a worker migrates a new database


@db_app.command("upgrade")
def db_upgrade(config: ConfigOpt = None, database_url: DatabaseOpt = None) -> None:
    """Apply all migrations."""
    from signalpost.kit.db import Database

    settings = settings_from(config, database_url=database_url)
    typer.echo(f"database: {settings.safe_database_url} ({database_source(settings)})", err=True)

    async def go() -> None:
        db = Database(
            settings.database_url,
            listen_url=settings.database_listen_url,
            transaction_pooler=settings.database_transaction_pooler,
        )
        try:
            await migrate.upgrade(db)
        finally:
            await db.dispose()

    asyncio.run(go())
    typer.echo("database is up to date")


@orgs_app.command("create")
def orgs_create(name: str, config: ConfigOpt = None, database_url: DatabaseOpt = None) -> None:
    """Create an organization with its own signing key and a first API key."""
    settings = settings_from(config, database_url=database_url)

    async def go(ctx: AppContext) -> tuple[accounts.Organization, str]:
        async with ctx.db.transaction() as uow:
            if await accounts_repo.find_organization(uow, name):
                typer.echo(f"error: organization {name!r} exists", err=True)
                raise typer.Exit(1)
            org = await accounts.create_organization(uow, name)
            key = await accounts.add_api_key(uow, org.id)
            return org, key

    org, key = run_with_context(settings, go)
    typer.echo(f"organization: {org.id} {org.name}\napi key: {key}\npublic key: {org.public_key}")


@orgs_app.command("list")
def orgs_list(config: ConfigOpt = None, database_url: DatabaseOpt = None) -> None:
    """List organizations."""
    settings = settings_from(config, database_url=database_url)

    async def go(ctx: AppContext) -> list[Any]:
        async with ctx.db.transaction() as uow:
            return await accounts_repo.list_organizations(uow)

    rows = run_with_context(settings, go)
    print_table(["ID", "NAME", "CREATED"], [(r["id"], r["name"], _when(r)) for r in rows])


def _org_or_exit(org: accounts.Organization | None, name: str | None) -> accounts.Organization:
    if org is None:
        typer.echo(f"error: no organization {name!r}", err=True)
        raise typer.Exit(1)
    return org


OrgOpt = Annotated[
    str | None, typer.Option("--org", help="Organization name or id (default: the first).")
]


@keys_app.command("create")
def keys_create(
    org: OrgOpt = None, config: ConfigOpt = None, database_url: DatabaseOpt = None
) -> None:
    """Create an API key and print it (it is stored hashed and shown only now)."""
    settings = settings_from(config, database_url=database_url)

    async def go(ctx: AppContext) -> str:
        async with ctx.db.transaction() as uow:
            o = _org_or_exit(await accounts.find_organization(uow, org), org)
            return await accounts.add_api_key(uow, o.id)

    typer.echo(run_with_context(settings, go))


@keys_app.command("list")
def keys_list(
    org: OrgOpt = None, config: ConfigOpt = None, database_url: DatabaseOpt = None
) -> None:
    """List API keys (id, prefix, organization, state)."""
    settings = settings_from(config, database_url=database_url)

    async def go(ctx: AppContext) -> list[Any]:
        async with ctx.db.transaction() as uow:
            org_id = (
                _org_or_exit(await accounts.find_organization(uow, org), org).id if org else None
            )
            return await accounts_repo.list_api_keys(uow, org_id)

    rows = run_with_context(settings, go)
    print_table(
        ["ID", "PREFIX", "ORGANIZATION", "STATE"],
        [(r["id"], f"{r['prefix']}…", r["organization_name"], _key_state(r)) for r in rows],
    )


def _key_state(row: Any) -> str:
    return "revoked" if row["revoked_at"] else "active"


def _when(row: Any) -> str:
    value = row.get("created_at") if hasattr(row, "get") else None
    return value.strftime("%Y-%m-%d %H:%M") if value is not None else ""


@keys_app.command("revoke")
def keys_revoke(key_id: str, config: ConfigOpt = None, database_url: DatabaseOpt = None) -> None:
    """Revoke an API key by id or prefix."""
    from signalpost.kit.clock import utcnow

    settings = settings_from(config, database_url=database_url)

    async def go(ctx: AppContext) -> int:
        async with ctx.db.transaction() as uow:
            return await accounts_repo.revoke_api_key(uow, key_id, utcnow())

    if run_with_context(settings, go) == 0:
        typer.echo(f"error: no active key {key_id!r}", err=True)
        raise typer.Exit(1)
    typer.echo("revoked")


@keys_app.command("public")
def keys_public(
    org: OrgOpt = None, config: ConfigOpt = None, database_url: DatabaseOpt = None
) -> None:
    """Print the webhook public key in the form TELNYX_PUBLIC_KEY expects."""
    settings = settings_from(config, database_url=database_url)

    async def go(ctx: AppContext) -> str:
        async with ctx.db.transaction() as uow:
            return _org_or_exit(await accounts.find_organization(uow, org), org).public_key

    typer.echo(run_with_context(settings, go))


# Feature commands: `signalpost.<feature>.cli` exposes `register(app)`.
FEATURE_COMMANDS = (
    "numbers",
    "profiles",
    "messages",
    "optouts",
    "simulator",
    "gateway",
    "links",
    "webhooks",
)
for _feature in FEATURE_COMMANDS:
    try:
        _module = importlib.import_module(f"signalpost.{_feature}.cli")
    except ModuleNotFoundError as _exc:
        if _exc.name != f"signalpost.{_feature}.cli":
            raise
        continue
    _module.register(app)


def main() -> None:
    app(prog_name="signalpost")


if __name__ == "__main__":
    main()
