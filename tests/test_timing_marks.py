"""``@pytest.mark.timing`` is on tests only: scripts/test runs the marked tests alone, after
the rest, because their wall-clock bounds break under the other tests' load. A fold of test
setup into a helper once carried the mark off its test onto the helper (where it means
nothing), and the simulator's ts-lag test then ran beside 2,750 others on two workers."""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parent


def _marks_timing(decorator: ast.expr) -> bool:
    return ast.unparse(decorator).replace(" ", "") in ("pytest.mark.timing", "mark.timing")


def test_the_timing_mark_decorates_only_tests() -> None:
    misplaced = [
        f"{path.relative_to(TESTS.parent)}:{node.lineno} {node.name}"
        for path in sorted(TESTS.rglob("*.py"))
        for node in ast.walk(ast.parse(path.read_text(), str(path)))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
        and not node.name.startswith(("test_", "Test"))
        and any(_marks_timing(d) for d in node.decorator_list)
    ]
    assert misplaced == [], misplaced
