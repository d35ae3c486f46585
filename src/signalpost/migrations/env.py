"""Alembic environment: runs on the connection handed in by `signalpost.kit.migrate`."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from signalpost.models import metadata

config = context.config


def run() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        context.configure(
            connection=connection,
            target_metadata=metadata,
            render_as_batch=connection.dialect.name == "sqlite",
            compare_type=True,
        )
        context.run_migrations()
        return
    url = config.get_main_option("sqlalchemy.url")
    assert url, "sqlalchemy.url is not set"
    engine = create_engine(url.replace("+aiosqlite", "").replace("+asyncpg", "+psycopg"))
    with engine.begin() as conn:
        context.configure(connection=conn, target_metadata=metadata, compare_type=True)
        context.run_migrations()


run()
