"""The wall clock, in the unit every timestamp of the product uses (ms since the epoch, UTC)."""

from __future__ import annotations

import time


def now_ms() -> int:
    """Milliseconds since the epoch, UTC."""
    return time.time_ns() // 1_000_000
