"""The SDK's public names are pinned (as httpx's test_exported_members does), and the SDK
imports nothing of the server: the base install has none of its dependencies."""

from __future__ import annotations

import inspect
import json
import subprocess
import sys
import textwrap
from types import ModuleType

import pytest

import purpleflea
import purpleflea.client

CLIENT_EXPORTS = [
    "AuthenticationError",
    "BadRequestError",
    "Bucket",
    "Coverage",
    "CoverageGap",
    "CoverageHour",
    "CoverageImport",
    "HistoryPage",
    "LiquidationClient",
    "PurpleFleaError",
    "RateLimitError",
    "ServerUnreachableError",
    "Stream",
    "SyncLiquidationClient",
    "SyncStream",
]
PACKAGE_EXPORTS = sorted(
    [
        *CLIENT_EXPORTS,
        "CascadeAlert",
        "Cluster",
        "Heatmap",
        "Instrument",
        "Liquidation",
        "MeasuredMap",
        "VenueLiquidation",
        "WebhookVerificationError",
        "verify_webhook",
    ]
)


def _public(module: ModuleType) -> set[str]:
    """What the module's namespace offers besides private names and its submodules."""
    return {
        name
        for name, value in vars(module).items()
        if not name.startswith("_") and not isinstance(value, ModuleType)
    }


@pytest.mark.parametrize(
    ("module", "expected"),
    [(purpleflea, PACKAGE_EXPORTS), (purpleflea.client, CLIENT_EXPORTS)],
    ids=["purpleflea", "purpleflea.client"],
)
def test_exported_members(module: ModuleType, expected: list[str]) -> None:
    assert module.__all__ == expected
    for name in module.__all__:
        member = getattr(module, name)
        assert inspect.getdoc(member), f"{module.__name__}.{name} has no docstring"
    # Nothing public besides __all__: a new name is exported on purpose or kept private (the
    # package's names are its own once one is used: they are imported then, not with it).
    assert _public(module) == set(expected)
    assert set(expected) <= set(dir(module))


def test_the_package_exports_the_client_s_objects_themselves() -> None:
    for name in purpleflea.client.__all__:
        assert getattr(purpleflea, name) is getattr(purpleflea.client, name)


def test_every_public_method_of_the_clients_is_documented() -> None:
    for cls in (purpleflea.LiquidationClient, purpleflea.SyncLiquidationClient):
        for name, member in vars(cls).items():
            if not name.startswith("_"):
                assert inspect.getdoc(member), f"{cls.__name__}.{name} has no docstring"


# Server-side parts of the package, and the server's dependencies (the `server` extra).
_SERVER_ONLY = [
    "purpleflea.server",
    "purpleflea.ingest",
    "purpleflea.engine",
    "purpleflea.store",
    "purpleflea.bus",
    "purpleflea.venues",
    "purpleflea.sim",
    "purpleflea.backtest",
    "purpleflea.mcp",
    "purpleflea.commands",
    "purpleflea.cli",
    "starlette",
    "uvicorn",
    "numpy",
    "nats",
    "psycopg",
    "mcp",
    "pyarrow",
]
_SDK_ONLY = """
import importlib.abc, json, sys

BLOCKED = {blocked}

class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if any(name == b or name.startswith(b + ".") for b in BLOCKED):
            raise ImportError(f"server-only module imported by the SDK: {{name}}")
        return None

sys.meta_path.insert(0, Block())
import purpleflea
import purpleflea.client
from purpleflea.client import LiquidationClient, SyncLiquidationClient

LiquidationClient(api_key="pf_x", base_url="http://127.0.0.1:9")
purpleflea.LiquidationClient(api_key="pf_x", base_url="http://127.0.0.1:9")  # the SPEC's way
SyncLiquidationClient(api_key="pf_x", base_url="http://127.0.0.1:9").close()
print(json.dumps(sorted(m for m in sys.modules if m.startswith("purpleflea"))))
"""


def test_the_sdk_imports_no_server_code() -> None:
    script = textwrap.dedent(_SDK_ONLY).format(blocked=repr(_SERVER_ONLY))
    run = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert run.returncode == 0, run.stderr
    loaded = json.loads(run.stdout)
    shared = {
        "purpleflea",
        "purpleflea.clock",  # both ends read a Retry-After the same way
        "purpleflea.formatting",  # both ends escape text a stranger chose the same way
        "purpleflea.idle",  # both ends wait for a read that may be due in the same turn
        "purpleflea.model",
        "purpleflea.positions",
        "purpleflea.webhook",
        "purpleflea.websocket_ready",  # both ends read websockets the same way
    }
    assert {m for m in loaded if not m.startswith("purpleflea.client")} == shared
    assert "purpleflea.client.sync" in loaded


def test_the_block_above_really_blocks() -> None:
    # The check is only worth something if a server import would fail under it.
    script = textwrap.dedent(_SDK_ONLY).format(blocked=repr(_SERVER_ONLY))
    script = script.replace("import purpleflea.client\n", "import purpleflea.server.app\n", 1)
    run = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert run.returncode != 0
    assert "server-only module imported by the SDK: purpleflea.server" in run.stderr
