"""The wall clock, in the unit every timestamp of the product uses (ms since the epoch, UTC)."""

from __future__ import annotations

import time


def now_ms() -> int:
    """Milliseconds since the epoch, UTC."""
    return time.time_ns() // 1_000_000


#: Seconds since the epoch of 2001-09-09 to 5138 fall here; read as milliseconds they are
#: 1970-01-12 to 1973-03-03, before any liquidation anyone recorded: a time given in this range
#: is seconds by mistake, and a filter on it would match nothing or everything, silently.
SECONDS_LIKE = range(1_000_000_000, 100_000_000_000)


def seconds_mistake(name: str, value: int) -> str | None:
    """What to say when ``value`` (given as ``name``, meant as ms) looks like seconds."""
    if value not in SECONDS_LIKE:
        return None
    return (
        f"{name} {value} looks like seconds since the epoch ({utc_iso(value * 1000)}); times "
        f"are milliseconds: {value * 1000}"
    )


def utc_iso(ms: int) -> str:
    """``ms`` since the epoch as ``2025-10-10T20:00:00Z``."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ms // 1000))
