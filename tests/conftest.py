"""Shared test helpers: where the team's shared/ folder is; the collector's heap kept out of
the garbage collector's reach; which tests share a worker under pytest-xdist."""

from __future__ import annotations

import gc
import os
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from xdist.remote import Producer
    from xdist.scheduler import Scheduling

REPO = Path(__file__).resolve().parents[1]


def shared_dir() -> Path:
    """shared/ beside the checkout (CI and developers), or $PURPLEFLEA_SHARED."""
    configured = os.environ.get("PURPLEFLEA_SHARED")
    path = Path(configured) if configured else REPO.parent / "shared"
    if not (path / "fixtures" / "exchanges").is_dir():
        raise RuntimeError(
            f"shared fixtures not found at {path}; the tests need the team's shared/ folder "
            "beside the checkout (or PURPLEFLEA_SHARED pointing at it)"
        )
    return path


@pytest.fixture(scope="session")
def shared() -> Path:
    return shared_dir()


def pytest_collection_finish(session: pytest.Session) -> None:
    """Freeze what collection built (modules, test items; ~200k objects for the whole suite)
    so the garbage collector's full passes stop walking it: the simulator tests allocate
    enough to trigger dozens of those passes. Objects made by the tests are collected as
    before. Measured over tests/ingest/test_simulated_hyperliquid.py and tests/sim's
    history, truth and simulator tests: time in the collector 5.7 s -> 2.1 s."""
    gc.collect()
    gc.freeze()


#: Tests that must share a worker under pytest-xdist (``scripts/test -n 2``). Most read
#: something built once per process (a session- or module-scoped fixture, a cached simulation)
#: that split over both workers would be built twice: tests/sim's served market warm-ups, crash
#: runs and history month (tests/sim/conftest.py), the dashboard's one chromium, three modules'
#: module-wide data. The soak's two runs each need most of a core for 20 s: run side by side
#: under load, their clients made only 10 connections each in it (the test asks for more).
#: Node id prefix -> group; every other test is its own unit.
WORKER_GROUPS = {
    "tests/sim/test_basis.py::": "sim-recordings",
    "tests/sim/test_crash.py::": "sim-recordings",
    "tests/sim/test_shares.py::": "sim-recordings",
    "tests/dashboard/": "dashboard",
    "tests/ingest/test_simulated_hyperliquid.py::": "simulated-hyperliquid",
    "tests/history_io/test_export.py::": "export",
    "tests/store/test_aggregate_split.py::": "aggregate-split",
    "tests/reliability/test_soak.py::": "soak",
}


def worker_group(nodeid: str) -> str:
    """The unit of work a test belongs to: its :data:`WORKER_GROUPS` group, or itself."""
    return next((g for prefix, g in WORKER_GROUPS.items() if nodeid.startswith(prefix)), nodeid)


@pytest.hookimpl(optionalhook=True)  # pytest -p no:xdist, or a venv without it, still runs
def pytest_xdist_make_scheduler(config: pytest.Config, log: Producer) -> Scheduling | None:
    """Under ``-n`` (``--dist load``, its default, or ``loadgroup``), hand tests out one at a
    time, each :data:`WORKER_GROUPS` group as one unit, the largest groups first.

    xdist's own ``loadgroup`` reads ``xdist_group`` marks, but pytest-xdist 3.8 applies them by
    rewriting ``item._nodeid``, which pytest 9 no longer reads: every test ran wherever it
    landed. So the groups are named here, by node id, which the scheduler sees."""
    if config.getvalue("dist") not in ("load", "loadgroup"):
        return None
    from xdist.scheduler import LoadScopeScheduling

    class Grouped(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return worker_group(nodeid)

    return Grouped(config, log)
