"""The sim command's tests meet a running tracker from tests/server's harness; the served
market's crash and calm runs and a month of the five largest markets are simulated once a
session (in the background, tests/sim/background.py) and shared by the tests that read them."""

from __future__ import annotations

import functools
from collections.abc import Callable

import pytest

from tests.server.conftest import live
from tests.sim.background import BACKGROUND, HISTORY_MONTH, SERVED_CALM, SERVED_CRASH
from tests.sim.recorded import BlockRecording, Recording

__all__ = ["history_month", "live", "served_calm", "served_crash"]


@pytest.fixture(scope="session")
def served_crash() -> Callable[[int], Recording]:
    """The served market of a seed (its crash episode starts at once): its first
    :data:`~tests.sim.background.CRASH_MINUTES`. test_crash reads all of them, test_basis the
    first ten of seed 0."""
    return functools.partial(BACKGROUND.get, SERVED_CRASH)


@pytest.fixture(scope="session")
def served_calm() -> Callable[[int], Recording]:
    """The served market of a seed with its crash episode off: its first
    :data:`~tests.sim.background.CALM_MINUTES` (test_basis)."""
    return functools.partial(BACKGROUND.get, SERVED_CALM)


@pytest.fixture(scope="session")
def history_month() -> Callable[[int], BlockRecording]:
    """A month (30 days) of ``history_config(seed=seed, n_markets=5)`` in its 5-minute blocks.
    test_crash reads the whole month, test_shares the first 8 days of seed 0."""
    return functools.partial(BACKGROUND.get, HISTORY_MONTH)
