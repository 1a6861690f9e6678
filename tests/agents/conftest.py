"""The agent tools' tests date their events from ``now``, the clock when the test runs: a time
taken when the module was imported is the time of collection, which under pytest-xdist may be
half an hour before the test, outside the server's "last 10 min"."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from purpleflea.clock import now_ms
from tests.agents.test_mcp import Burst, _burst
from tests.server.conftest import Running, make_config, running_server


@pytest.fixture
def now() -> int:
    """Milliseconds since the epoch when the test starts."""
    return now_ms()


@pytest.fixture
def burst(now: int) -> Burst:
    """The events ``fed`` serves: a burst that starts ten minutes before ``now``."""
    start = now - 10 * 60_000
    return Burst(now, start, _burst(start))


@pytest.fixture
async def fed(tmp_path: Path, burst: Burst) -> AsyncIterator[Running]:
    """A served tracker holding ``burst``'s events (a rate limit no test reaches)."""
    async with running_server(make_config(tmp_path, rate_burst=500.0, rate_per_s=500.0)) as live:
        await live.push(*burst.events)
        yield live
