"""Command-line output: aligned tables with headers (rich) and validation errors people can read."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Sequence
from typing import Any

from pydantic import ValidationError
from rich import box
from rich.console import Console
from rich.table import Table


def console(*, err: bool = False) -> Console:
    """A console on stdout (or stderr). Piped output gets no colours and a wide line, so that
    tables are not wrapped for a terminal that is not there."""
    stream = sys.stderr if err else sys.stdout
    tty = stream.isatty()
    width = None if tty else int(os.environ.get("COLUMNS", "0") or 0) or 240
    return Console(file=stream, width=width, no_color=not tty, highlight=False, soft_wrap=not tty)


def print_table(
    columns: Sequence[str], rows: Iterable[Sequence[Any]], *, empty: str = "(none)"
) -> None:
    """Rows under a header line, columns aligned; `empty` when there are no rows."""
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    for name in columns:
        table.add_column(name, overflow="fold")
    count = 0
    for row in rows:
        table.add_row(*("" if v is None else str(v) for v in row))
        count += 1
    out = console()
    if count == 0:
        out.print(empty)
        return
    out.print(table)


def _where(loc: Sequence[str | int], env_prefix: str | None, options: bool) -> str:
    if env_prefix is not None:
        return env_prefix + "__".join(str(p).upper() for p in loc)
    if options and loc:
        return "--" + str(loc[0]).replace("_", "-")
    return ".".join(str(p) for p in loc) or "value"


def humane(exc: ValidationError, *, env_prefix: str | None = None, options: bool = False) -> str:
    """One line per problem: where (a field; with `env_prefix` the environment variable that
    sets it; with `options` the command-line option), what is wrong, and the value given; no
    pydantic links or internals."""
    lines = []
    for err in exc.errors(include_url=False):
        loc = [p for p in err.get("loc", ()) if not (isinstance(p, str) and "[" in p)]
        where = _where(loc, env_prefix, options)
        msg = str(err.get("msg", "invalid value")).removeprefix("Value error, ")
        if err.get("type") == "extra_forbidden":
            msg = "not a known setting"
        given = err.get("input")
        shown = "" if isinstance(given, dict | list) or given is None else f" (got {given!r})"
        lines.append(f"{where}: {msg}{shown}")
    return "\n".join(lines)
