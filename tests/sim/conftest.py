"""The sim command's tests meet a running tracker from tests/server's harness; the served
market's crash and calm runs and a month of the five largest markets are simulated once a
session and shared by the tests that read them."""

from __future__ import annotations

import copy
import functools
from collections.abc import Callable

import pytest

from purpleflea.sim import SimConfig, Simulator
from purpleflea.sim.history import history_config
from tests.server.conftest import live
from tests.sim.recorded import BlockRecording, Recording, record_blocks, record_run

__all__ = ["history_month", "live", "served_calm", "served_crash"]

#: The crash episode runs 45 minutes; its test reads the 5 after it too.
CRASH_MINUTES = 50
#: test_basis reads the calm served market's first 15 minutes (of six seeds: 459 same-second
#: spreads; one seed's gave 3 to 233, as a shock came or not).
CALM_MINUTES = 15


@functools.cache
def _served_warmed_up(seed: int) -> Simulator:
    """The served market of ``seed`` after its warm-up (two hours of 275 markets in minute
    blocks, ~0.8 s of CPU), crash episode off."""
    return Simulator(SimConfig.served(seed=seed, crash_start_ms=None))


def _served(seed: int, *, crash: bool) -> Simulator:
    """A fresh served market of ``seed`` at its start, with or without its crash episode.

    Both share one warm-up: the episode changes nothing before it starts (test_crash's
    test_a_scheduled_crash_changes_nothing_before_it_starts) and the simulator reads
    ``crash_start_ms`` only as it computes a block. Checked for seeds 0 and 1: their 50
    crash minutes from the shared warm-up equal a fresh ``Simulator(SimConfig.served(seed))``'s
    in every array of the recording (352,605 and 436,219 events)."""
    sim = copy.deepcopy(_served_warmed_up(seed))
    if crash:
        sim.config = SimConfig.served(seed=seed)
    return sim


@functools.cache
def _served_run(seed: int, *, crash: bool) -> Recording:
    return record_run(_served(seed, crash=crash), CRASH_MINUTES if crash else CALM_MINUTES)


@pytest.fixture(scope="session")
def served_crash() -> Callable[[int], Recording]:
    """The served market of a seed (its crash episode starts at once): its first
    :data:`CRASH_MINUTES`, simulated at most once a session. test_crash reads all of them,
    test_basis the first ten of seed 0."""
    return functools.partial(_served_run, crash=True)


@pytest.fixture(scope="session")
def served_calm() -> Callable[[int], Recording]:
    """The served market of a seed with its crash episode off: its first
    :data:`CALM_MINUTES`, simulated at most once a session (test_basis)."""
    return functools.partial(_served_run, crash=False)


@pytest.fixture(scope="session")
def history_month() -> Callable[[int], BlockRecording]:
    """A month (30 days) of ``history_config(seed=seed, n_markets=5)`` in its 5-minute blocks,
    simulated at most once a session per seed. test_crash reads the whole month, test_shares
    the first 8 days of seed 0."""

    @functools.cache
    def run(seed: int) -> BlockRecording:
        return record_blocks(history_config(seed=seed, n_markets=5), 30)

    return run
