"""Source files and functions stay small enough to read in one go.

- No file under src/ is longer than `MAX_FILE_LINES` lines (generated Alembic migrations exempt).
- No function (or method) is longer than `MAX_FUNCTION_LINES` lines, counted from its `def` line
  (decorators excluded) to its last line, without the functions defined inside it (each of those
  is measured on its own: a CLI `register` that defines its commands is as long as its own
  statements), unless the line just above it (above its first decorator, if it has any) is a
  comment starting with `# long:` that says why, e.g.

      # long: one table-driven mapping of every field; splitting it hides the shape
      def to_row(...):
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src" / "signalpost"
MAX_FILE_LINES = 600
MAX_FUNCTION_LINES = 60
LONG_MARKER = "# long:"


def _sources() -> list[Path]:
    return [p for p in sorted(SRC.rglob("*.py")) if "migrations" not in p.relative_to(SRC).parts]


def test_no_source_file_over_the_limit() -> None:
    too_long = {
        str(path.relative_to(SRC)): n
        for path in _sources()
        if (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_FILE_LINES
    }
    assert not too_long, f"files over {MAX_FILE_LINES} lines: {too_long}"


Function = ast.FunctionDef | ast.AsyncFunctionDef


def _span(node: Function, *, decorators: bool = False) -> int:
    first = (
        min([node.lineno, *(d.lineno for d in node.decorator_list)]) if decorators else node.lineno
    )
    return (node.end_lineno or node.lineno) - first + 1


def _nested(node: Function) -> list[Function]:
    """The functions defined directly inside `node` (not inside those)."""
    found: list[Function] = []
    stack: list[ast.AST] = list(node.body)
    while stack:
        child = stack.pop()
        if isinstance(child, Function):
            found.append(child)
        else:
            stack.extend(ast.iter_child_nodes(child))
    return found


def long_functions(source: str) -> dict[str, int]:
    """`name (line)` -> length of each function longer than the limit without a `# long:` note."""
    lines = source.splitlines()
    found: dict[str, int] = {}
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, Function):
            continue
        length = _span(node) - sum(_span(inner, decorators=True) for inner in _nested(node))
        first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
        above = lines[first - 2].strip() if first >= 2 else ""
        if length > MAX_FUNCTION_LINES and not above.startswith(LONG_MARKER):
            found[f"{node.name} (line {node.lineno})"] = length
    return found


def test_no_function_over_the_limit_without_a_reason() -> None:
    too_long = {
        f"{path.relative_to(SRC)}: {name}": n
        for path in _sources()
        for name, n in long_functions(path.read_text(encoding="utf-8")).items()
    }
    assert not too_long, (
        f"functions over {MAX_FUNCTION_LINES} lines (split them, or put a `{LONG_MARKER} why`"
        f" comment on the line above): {too_long}"
    )


def test_the_function_check_sees_length_and_the_marker() -> None:
    body = "\n".join(f"    x{i} = {i}" for i in range(MAX_FUNCTION_LINES))
    plain = f"def f():\n{body}\n"
    assert long_functions(plain) == {"f (line 1)": MAX_FUNCTION_LINES + 1}
    noted = f"{LONG_MARKER} a reason\n@decorator\ndef f():\n{body}\n"
    assert long_functions(noted) == {}
    short = "def f():\n    return 1\n"
    assert long_functions(short) == {}
    outer = f"def outer():\n    @command\n    def f():\n    {body.replace(chr(10), chr(10) + '    ')}\n    return f\n"
    assert long_functions(outer) == {"f (line 3)": MAX_FUNCTION_LINES + 1}
