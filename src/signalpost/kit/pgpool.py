"""The PostgreSQL connection pool's liveness check, cheaper than SQLAlchemy's `pool_pre_ping`.

`pool_pre_ping` costs three round trips on every checkout with asyncpg (`BEGIN`, a ping, `ROLLBACK`):
as much as the transaction itself for the API's group commits. Here a connection is checked when it
is handed out: one the server or the network closed (asyncpg sees the socket close) is replaced at
once, and one that sat unused for `IDLE_PING_SECONDS` is pinged first, as `pool_pre_ping` would.
Connections in steady use cost nothing, and a server restart still costs no request an error.
"""

from __future__ import annotations

import itertools
import os
import time
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DisconnectionError

# A connection unused for this long is pinged before it is handed out.
IDLE_PING_SECONDS = 10.0


def check_on_checkout(engine: Engine) -> None:
    """Replace dead connections when the pool hands them out (see the module)."""

    @event.listens_for(engine, "checkin")
    def _checkin(_dbapi_conn: Any, record: Any) -> None:
        record.info["returned_at"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _checkout(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
        driver = getattr(dbapi_conn, "_connection", None)  # the asyncpg connection
        if driver is not None and driver.is_closed():
            raise DisconnectionError("connection closed")
        idle = time.monotonic() - record.info.get("returned_at", time.monotonic())
        if idle > IDLE_PING_SECONDS:
            try:
                dbapi_conn.ping()
            except Exception as exc:
                raise DisconnectionError("connection failed its ping") from exc


# The element types of the bulk statements' arrays (kit.pgbulk). asyncpg looks an array type up in
# the catalog the first time a connection uses it (a recursive query, with `jit` turned off and on
# around it: three round trips), type by type as statements need them; a new connection learns
# them all in one lookup instead.
PRIMED_ARRAYS = (
    "bool",
    "int4",
    "int8",
    "float8",
    "numeric",
    "varchar",
    "text",
    "timestamptz",
    "json",
    "jsonb",
    "bytea",
)
_PRIME = "SELECT " + ", ".join(f"${i + 1}::{t}[]" for i, t in enumerate(PRIMED_ARRAYS))


def prime_types(engine: Engine) -> None:
    """Teach each new connection the bulk statements' array types at once (see `PRIMED_ARRAYS`),
    after the dialect's own setup (its JSON codecs, which the array codecs build on)."""

    @event.listens_for(engine, "connect")
    def _connect(dbapi_conn: Any, _record: Any) -> None:
        nulls = [None] * len(PRIMED_ARRAYS)
        dbapi_conn.run_async(lambda conn: conn.fetchrow(_PRIME, *nulls))


_statement_names = itertools.count()


def pooler_connect_args() -> dict[str, Any]:
    """asyncpg's arguments behind a transaction-mode pooler (PgBouncer `pool_mode = transaction`):
    consecutive transactions may run on different server connections, so no statement stays
    prepared from one to the next (no caches), and each prepared statement has a name of its own
    (a name reused on a server connection where another client prepared it would clash)."""
    pid = os.getpid()
    return {
        "statement_cache_size": 0,
        "prepared_statement_cache_size": 0,
        "prepared_statement_name_func": lambda: f"__sp_{pid}_{next(_statement_names)}__",
    }
