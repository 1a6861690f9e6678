"""No test or benchmark picks a free port and releases it for a server to bind later: another
test's server (or any process) could take it in between, and the test then talks to a stranger
or its server fails to bind. Servers bind port 0 and say their port; dead addresses are held
(tests/ports.py)."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import REPO


def _is_socket_call(node: ast.expr) -> bool:
    return (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "socket"
        and isinstance(node.func.value, ast.Name)
        and node.func.value.id == "socket"
    )


def _released_ports(tree: ast.AST) -> list[int]:
    """Lines returning a value from inside ``with socket.socket()`` around a ``bind``: the
    socket closes as the function returns, so the port it bound is free again by the time
    anyone uses it."""
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.With):
            continue
        if not any(_is_socket_call(item.context_expr) for item in node.items):
            continue
        if ".bind(" not in ast.unparse(node):
            continue
        for inner in ast.walk(node):
            if isinstance(inner, ast.Return) and inner.value is not None:
                found.append(inner.lineno)
    return found


def test_the_release_pattern_is_found_where_it_is() -> None:
    picked = (
        "import socket\n"
        "def free_port() -> int:\n"
        "    with socket.socket() as sock:\n"
        "        sock.bind(('127.0.0.1', 0))\n"
        "        return int(sock.getsockname()[1])\n"
    )
    assert _released_ports(ast.parse(picked)) == [5]
    named = (
        "import socket\n"
        "def free_port() -> int:\n"
        "    with socket.socket() as probe:\n"
        "        probe.bind(('127.0.0.1', 0))\n"
        "        port: int = probe.getsockname()[1]\n"
        "        return port\n"
    )
    assert _released_ports(ast.parse(named)) == [6]
    held = (
        "import socket\n"
        "def held():\n"
        "    with socket.socket() as sock:\n"
        "        sock.bind(('127.0.0.1', 0))\n"
        "        yield sock.getsockname()[1]\n"
    )
    assert _released_ports(ast.parse(held)) == []


def test_no_test_or_benchmark_picks_a_port_and_releases_it() -> None:
    offenders = []
    for folder in ("tests", "bench"):
        for path in sorted((REPO / folder).rglob("*.py")):
            source = path.read_text()
            lines = _released_ports(ast.parse(source, filename=str(path)))
            offenders += [f"{path.relative_to(REPO)}:{line}" for line in lines]
            if "randint(20_000, 60_000)" in source and path != Path(__file__):
                offenders.append(f"{path.relative_to(REPO)}: a random port")
    assert offenders == [], offenders
