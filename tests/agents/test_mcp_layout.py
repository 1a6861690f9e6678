"""The MCP package's shape: one module per tool group, nothing imported from the CLI (the
CLI imports the MCP server, never the other way: no import cycle)."""

from __future__ import annotations

import ast
from pathlib import Path

import purpleflea.mcp

PACKAGE = Path(purpleflea.mcp.__file__).parent


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.ImportFrom) and node.module is not None:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


def test_the_mcp_package_imports_nothing_from_the_cli() -> None:
    modules = sorted(PACKAGE.glob("*.py"))
    assert {m.stem for m in modules} >= {"server", "liquidations", "cascades", "heatmaps"}
    for module in modules:
        cli = {
            name
            for name in _imports(module)
            if name == "purpleflea.cli" or name.startswith("purpleflea.commands")
        }
        assert not cli, f"{module.name} imports from the CLI: {sorted(cli)}"
