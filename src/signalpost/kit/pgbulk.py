"""PostgreSQL's side of `Conn.insert_many`, `Conn.update_many` and `Conn.rows_where_in`.

A batch goes to the server as one array per column, in one statement and one round trip:
`INSERT … SELECT … FROM unnest($1::t[], …)`, `UPDATE … FROM unnest(…)` and `… = ANY($1::t[])`.
The statement text depends only on the table and the set of keys, so asyncpg prepares it once per
connection, whatever the number of rows; SQLAlchemy's per-row parameter handling (and an expanding
`IN (…)` whose text, and prepared statement, changes with every batch size) is skipped. Values pass
through each column's own bind and result processors, as SQLAlchemy would apply them.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from typing import Any

import asyncpg
from sqlalchemy import Column, Float, Numeric, Table
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from signalpost.kit.sqlitebulk import Match

Processor = Any  # Callable[[Any], Any] | None


def _array_type(column: Column[Any], dialect: Dialect) -> str:
    return dialect.type_compiler_instance.process(column.type) + "[]"


def _bind(column: Column[Any], dialect: Dialect) -> Processor:
    return column.type._cached_bind_processor(dialect)


@functools.lru_cache(maxsize=256)
def insert_plan(
    table: Table, keys: tuple[str, ...], dialect: Dialect
) -> tuple[str, list[tuple[str, Processor]], list[Any]] | None:
    """The SQL inserting rows with these keys from one array per key, each key's bind processor,
    and the values of the other columns with a constant default (bound once); None when a key is
    no column or a column left out has another kind of default (SQLAlchemy inserts those)."""
    quote = dialect.identifier_preparer
    given: list[tuple[str, Processor]] = []
    arrays: list[str] = []
    columns: list[str] = []
    constants: list[Any] = []
    constant_casts: list[str] = []
    defaulted: list[str] = []
    for column in table.c:
        if column.key in keys:
            given.append((column.key, _bind(column, dialect)))
            arrays.append(_array_type(column, dialect))
            columns.append(quote.format_column(column))
        elif column.default is not None:
            if not column.default.is_scalar:
                return None
            processor = _bind(column, dialect)
            value = column.default.arg  # type: ignore[attr-defined]
            constants.append(processor(value) if processor else value)
            constant_casts.append(dialect.type_compiler_instance.process(column.type))
            defaulted.append(quote.format_column(column))
    if len(given) != len(keys) or not given:
        return None
    n = len(arrays)
    unnest = ", ".join(f"${i + 1}::{t}" for i, t in enumerate(arrays))
    extra = "".join(f", ${n + i + 1}::{t}" for i, t in enumerate(constant_casts))
    sql = (
        f"INSERT INTO {quote.format_table(table)} ({', '.join(columns + defaulted)}) "
        f"SELECT *{extra} FROM unnest({unnest})"
    )
    return sql, given, constants


@functools.lru_cache(maxsize=256)
def update_plan(
    table: Table, keys: tuple[str, ...], match: Match, dialect: Dialect
) -> tuple[str, list[tuple[str, Processor]]] | None:
    """The SQL of an update from one array per key: the columns named by `keys` (less the match
    keys) set where the match columns equal their parameters; each parameter's bind processor."""
    quote = dialect.identifier_preparer
    matched = {key for key, _ in match}
    sets = [k for k in keys if k not in matched]
    if not sets or any(k not in table.c for k in sets) or not matched <= set(keys):
        return None
    order = [(k, table.c[k]) for k in sets] + [(key, table.c[col]) for key, col in match]
    names = [f"p{i}" for i in range(len(order))]
    target = quote.format_table(table)
    unnest = ", ".join(f"${i + 1}::{_array_type(c, dialect)}" for i, (_, c) in enumerate(order))
    sql = (
        f"UPDATE {target} SET "
        + ", ".join(f"{quote.format_column(table.c[k])} = u.{names[i]}" for i, k in enumerate(sets))
        + f" FROM unnest({unnest}) AS u({', '.join(names)}) WHERE "
        + " AND ".join(
            f"{target}.{quote.format_column(table.c[col])} = u.{names[len(sets) + i]}"
            for i, (_, col) in enumerate(match)
        )
    )
    return sql, [(k, _bind(c, dialect)) for k, c in order]


@functools.lru_cache(maxsize=64)
def select_plan(
    table: Table, column: str, for_update: bool, dialect: Dialect
) -> tuple[str, Processor, list[tuple[str, Processor]]]:
    """`SELECT` every column of `table` whose `column` is in the array `$1` (locked in `column`
    order with `for_update`), the key's bind processor, and each column's key and result
    processor, in order."""
    quote = dialect.identifier_preparer
    key = table.c[column]
    sql = (
        f"SELECT {', '.join(quote.format_column(c) for c in table.c)} "
        f"FROM {quote.format_table(table)} "
        f"WHERE {quote.format_column(key)} = ANY($1::{_array_type(key, dialect)})"
    )
    if for_update:
        sql += f" ORDER BY {quote.format_column(key)} FOR UPDATE"
    return (
        sql,
        _bind(key, dialect),
        [(c.key, c.type._cached_result_processor(dialect, _oid(c))) for c in table.c],
    )


def _oid(column: Column[Any]) -> int | None:
    """The PostgreSQL type a column reads as, where its result processor depends on it."""
    if isinstance(column.type, Float):
        return 701  # double precision
    if isinstance(column.type, Numeric):
        return 1700  # numeric
    return None


def columns_of(
    rows: Sequence[Mapping[str, Any]], params: Sequence[tuple[str, Processor]]
) -> list[list[Any]]:
    """One list of values per parameter (through its bind processor), in the rows' order."""
    out: list[list[Any]] = []
    for key, processor in params:
        if processor is None:
            out.append([row[key] for row in rows])
        else:
            out.append([processor(row[key]) for row in rows])
    return out


async def run(conn: AsyncConnection, sql: str, args: Sequence[Any], *, fetch: bool) -> Any:
    """Run `sql` on the asyncpg connection under SQLAlchemy's, inside its transaction (begun here
    if no statement began it yet): the records with `fetch`, else the command's status text."""
    raw = await conn.get_raw_connection()
    adapter: Any = raw.dbapi_connection  # SQLAlchemy's adapter around the asyncpg connection
    async with adapter._execute_mutex:
        if adapter._transaction is None:
            await adapter._start_transaction()
        driver = adapter._connection
        try:
            if fetch:
                return await driver.fetch(sql, *args)
            return await driver.execute(sql, *args)
        except Exception as exc:
            # Constraint violations (a unique key taken concurrently) are handled by type: the
            # exception SQLAlchemy raises for them.
            if isinstance(exc, asyncpg.exceptions.IntegrityConstraintViolationError):
                raise IntegrityError(sql, None, exc) from exc
            raise


def distinct_runs(
    rows: Sequence[Mapping[str, Any]], keys: Sequence[str]
) -> list[Sequence[Mapping[str, Any]]]:
    """`rows` cut into runs in which no two rows have the same values for `keys`: an update from
    arrays changes a row once, so a row given twice is updated by two statements, in order."""
    runs: list[Sequence[Mapping[str, Any]]] = []
    seen: set[tuple[Any, ...]] = set()
    start = 0
    for i, row in enumerate(rows):
        key = tuple(row[k] for k in keys)
        if key in seen:
            runs.append(rows[start:i])
            seen.clear()
            start = i
        seen.add(key)
    runs.append(rows[start:])
    return runs


def rowcount(status: str) -> int:
    """Rows changed, from a command status such as `UPDATE 12`."""
    tail = status.rsplit(" ", 1)[-1]
    return int(tail) if tail.isdigit() else -1
