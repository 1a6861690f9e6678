"""The wall clock, in the unit every timestamp of the product uses (ms since the epoch, UTC)."""

from __future__ import annotations

import datetime as dt
import email.utils
import re
import time


def now_ms() -> int:
    """Milliseconds since the epoch, UTC."""
    return time.time_ns() // 1_000_000


#: Seconds since the epoch of 2001-09-09 to 5138 fall here; read as milliseconds they are
#: 1970-01-12 to 1973-03-03, before any liquidation anyone recorded: a time given in this range
#: is seconds by mistake, and a filter on it would match nothing or everything, silently.
SECONDS_LIKE = range(1_000_000_000, 100_000_000_000)


def seconds_mistake(name: str, value: int) -> str | None:
    """What to say when ``value`` (given as ``name``, meant as ms; "": unnamed, as the text a
    caller already names) looks like seconds."""
    if value not in SECONDS_LIKE:
        return None
    return (
        f"{f'{name} ' if name else ''}{value} looks like seconds since the epoch "
        f"({utc_iso(value * 1000)}); times are milliseconds: {value * 1000}"
    )


def utc_iso(ms: int) -> str:
    """``ms`` since the epoch as ``2025-10-10T20:00:00Z``."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ms // 1000))


#: A time ago: "6h", and as a model writes it, "2h ago", "90 minutes ago", "1 hour".
_AGO = re.compile(
    r"(\d+(?:\.\d+)?)\s*(s|secs?|seconds?|m|mins?|minutes?|h|hrs?|hours?|d|days?|w|weeks?)"
    r"(?:\s+ago)?"
)
_UNIT_MS = {"s": 1_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000}
#: A zone named after a date and time ("2025-10-10 20:30:00 UTC", as the MCP tools print
#: times): the two that mean UTC.
_UTC_NAMED = re.compile(r"\s+(?:utc|gmt)$", re.IGNORECASE)


def parse_when(text: str, *, now: int | None = None) -> int:
    """``text`` as ms since the epoch (UTC); ``now`` (ms) anchors ``90m``-style times ago.

    Raises ValueError naming ``text`` and the forms it takes."""
    value = text.strip()
    if value.isdigit():
        ms = int(value)
        mistake = seconds_mistake("", ms)  # the caller names it (`--start`, `start:`)
        if mistake is not None:
            raise ValueError(f"{mistake}, or a date such as {utc_iso(ms * 1000)[:10]}")
        return ms
    if value.lower() == "now":  # as the MCP tools' end_ms takes it; `--end now` was refused
        return now_ms() if now is None else now
    ago = _AGO.fullmatch(value.lower())  # "6H" as "6h"
    if ago is not None:
        anchor = now_ms() if now is None else now
        return anchor - round(float(ago.group(1)) * _UNIT_MS[ago.group(2)[0]])
    named_utc = _UTC_NAMED.search(value)
    if named_utc is not None:
        value = value[: named_utc.start()]
    try:
        moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(
            f"{text!r} is not a time: give a UTC date (2025-10-10), a date and time "
            "(2025-10-10T20:30, UTC unless it names an offset), a time ago (90m, 6h, 7d), now "
            "or milliseconds since the epoch"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    elif named_utc is not None and moment.utcoffset():
        raise ValueError(f"{text!r} is not a time: it names an offset and UTC")
    return int(moment.timestamp() * 1000)


def retry_after_seconds(value: str | None, *, now: float) -> float | None:
    """A ``Retry-After`` header (seconds, or an HTTP date) as seconds from ``now``."""
    if value is None or not value.strip():
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, float(when.timestamp()) - now)
