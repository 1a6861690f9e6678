"""The sim command's tests meet a running tracker from tests/server's harness; the served
market's crash runs and a month of the five largest markets are simulated once a session and
shared by the tests that read them."""

from __future__ import annotations

import functools
from collections.abc import Callable

import pytest

from purpleflea.sim import SimConfig
from purpleflea.sim.history import history_config
from tests.server.conftest import live
from tests.sim.recorded import BlockRecording, Recording, record, record_blocks

__all__ = ["history_month", "live", "served_crash"]

#: The crash episode runs 45 minutes; its test reads the 5 after it too.
CRASH_MINUTES = 50


@pytest.fixture(scope="session")
def served_crash() -> Callable[[int], Recording]:
    """The served market of a seed (its crash episode starts at once): its first
    :data:`CRASH_MINUTES`, simulated at most once a session. test_crash reads all of them,
    test_basis the first ten of seed 0."""

    @functools.cache
    def run(seed: int) -> Recording:
        return record(SimConfig.served(seed=seed), CRASH_MINUTES)

    return run


@pytest.fixture(scope="session")
def history_month() -> Callable[[int], BlockRecording]:
    """A month (30 days) of ``history_config(seed=seed, n_markets=5)`` in its 5-minute blocks,
    simulated at most once a session per seed. test_crash reads the whole month, test_shares
    the first 8 days of seed 0."""

    @functools.cache
    def run(seed: int) -> BlockRecording:
        return record_blocks(history_config(seed=seed, n_markets=5), 30)

    return run
