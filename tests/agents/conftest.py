"""The agent tools' tests date their events from ``now``, the clock when the test runs: a time
taken when the module was imported is the time of collection, which under pytest-xdist may be
half an hour before the test, outside the server's "last 10 min"."""

from __future__ import annotations

import pytest

from purpleflea.clock import now_ms


@pytest.fixture
def now() -> int:
    """Milliseconds since the epoch when the test starts."""
    return now_ms()
