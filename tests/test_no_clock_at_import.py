"""No test module reads the clock when it is imported: a ``NOW`` taken at import is the time
of collection, and under pytest-xdist a test may run half an hour after its module was
collected (CI, 2 workers at load 13: market_summary's "last 10 min" held none of the events a
module had dated a minute before its import). A test takes its "now" when it runs (a fixture,
or inside the test)."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

TESTS = Path(__file__).resolve().parent

#: Calls that read a clock: ``time.time()``, ``now_ms()``, ``datetime.now(...)``, ...
CLOCKS = {"time", "time_ns", "monotonic", "monotonic_ns", "now_ms", "now", "utcnow", "today"}


def _called_name(call: ast.Call) -> str | None:
    if isinstance(call.func, ast.Name):
        return call.func.id
    if isinstance(call.func, ast.Attribute):
        return call.func.attr
    return None


def _run_at_import(node: ast.AST) -> Iterator[ast.AST]:
    """``node`` and what under it runs when its module is imported: not function bodies
    (their defaults and decorators do run) nor lambdas."""
    yield node
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
        children: list[ast.AST] = [*node.decorator_list, node.args]
    elif isinstance(node, ast.Lambda):
        children = [node.args]
    else:
        children = list(ast.iter_child_nodes(node))
    for child in children:
        yield from _run_at_import(child)


def clock_reads_at_import(source: str) -> list[int]:
    """The lines of ``source`` that read a clock when the module is imported."""
    return sorted(
        node.lineno
        for node in _run_at_import(ast.parse(source))
        if isinstance(node, ast.Call) and _called_name(node) in CLOCKS
    )


def test_the_check_sees_a_clock_read_at_import_and_not_one_in_a_function() -> None:
    source = (
        "import time\n"
        "NOW = time.time_ns() // 1_000_000\n"
        "START = now_ms() - 60_000\n"
        "def later(at=time.time()):\n"
        "    return time.time()\n"
        "class Held:\n"
        "    when = dt.datetime.now(dt.UTC)\n"
        "latest = lambda: time.time()\n"
    )
    assert clock_reads_at_import(source) == [2, 3, 4, 7]


def test_no_test_module_reads_the_clock_when_imported() -> None:
    found = [
        f"{path.relative_to(TESTS.parent)}:{line}"
        for path in sorted(TESTS.rglob("*.py"))
        for line in clock_reads_at_import(path.read_text())
    ]
    assert found == [], (
        "these read the clock when their module is imported (collection, maybe long before "
        f"the test runs): take the time in the test or a fixture: {found}"
    )
