"""SQLite's side of `Conn.insert_many`, `Conn.update_many` and `Conn.rows_where_in`: the SQL of each
statement for the driver's own `executemany` and cursor, and the columns' bind and result
processors to apply to the values, built once per table and set of keys."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from sqlalchemy import Table
from sqlalchemy.engine import Dialect

# (parameter key, column name) pairs compared for equality (`Conn.update_many`'s match).
Match = tuple[tuple[str, str], ...]

Processor = Callable[[Any], Any] | None


@functools.lru_cache(maxsize=256)
def insert_plan(
    table: Table, keys: tuple[str, ...], dialect: Dialect
) -> tuple[str, list[tuple[str, Processor]], list[Any]] | None:
    """The SQL of a bulk insert of rows with these keys, each key's bind processor, and the values
    of the other columns with a constant default (as SQLAlchemy would fill them in); None when a
    key is no column or a column left out has another kind of default (then SQLAlchemy inserts)."""
    given: list[tuple[str, Processor]] = []
    constants: list[Any] = []
    columns: list[str] = []
    defaulted: list[str] = []
    quote = dialect.identifier_preparer
    for column in table.c:
        processor = column.type._cached_bind_processor(dialect)
        if column.key in keys:
            given.append((column.key, processor))
            columns.append(quote.format_column(column))
        elif column.default is not None:
            if not column.default.is_scalar:
                return None
            value = column.default.arg  # type: ignore[attr-defined]
            constants.append(processor(value) if processor else value)
            defaulted.append(quote.format_column(column))
    if len(given) != len(keys):
        return None
    names = columns + defaulted
    sql = (
        f"INSERT INTO {quote.format_table(table)} ({', '.join(names)}) "
        f"VALUES ({', '.join('?' * len(names))})"
    )
    return sql, given, constants


@functools.lru_cache(maxsize=256)
def update_plan(
    table: Table, keys: tuple[str, ...], match: Match, dialect: Dialect
) -> tuple[str, list[tuple[str, Processor]]] | None:
    """The SQL of an update setting the columns named by `keys` (less the match keys) where the
    match columns equal their parameters, and the bind processor of each parameter in order."""
    quote = dialect.identifier_preparer
    matched = {key for key, _ in match}
    sets = [k for k in keys if k not in matched]
    if not sets or any(k not in table.c for k in sets) or not matched <= set(keys):
        return None
    order = [(k, table.c[k]) for k in sets] + [(key, table.c[col]) for key, col in match]
    sql = (
        f"UPDATE {quote.format_table(table)} SET "
        + ", ".join(f"{quote.format_column(table.c[k])} = ?" for k in sets)
        + " WHERE "
        + " AND ".join(f"{quote.format_column(table.c[col])} = ?" for _, col in match)
    )
    return sql, [(k, c.type._cached_bind_processor(dialect)) for k, c in order]


@functools.lru_cache(maxsize=64)
def select_plan(
    table: Table, column: str, dialect: Dialect
) -> tuple[str, Processor, list[tuple[str, Processor]]]:
    """`SELECT` every column of `table` `WHERE column IN (`, the key's bind processor, and each
    column's key and result processor, in order."""
    quote = dialect.identifier_preparer
    sql = (
        f"SELECT {', '.join(quote.format_column(c) for c in table.c)} "
        f"FROM {quote.format_table(table)} WHERE {quote.format_column(table.c[column])} IN ("
    )
    key = table.c[column].type._cached_bind_processor(dialect)
    return sql, key, [(c.key, c.type._cached_result_processor(dialect, None)) for c in table.c]
