"""Points in time as the commands take them: ``--start``/``--end`` of ``history`` and ``export``.

A user types what they have at hand: a date from a chart (``2025-10-10``), a moment
(``2025-10-10T20:30``, UTC unless it says otherwise), how long ago (``90m``, ``6h``, ``7d``), or
the API's milliseconds since the epoch (what every event's ``ts`` is). Seconds since the epoch,
the other common clock, look like 1970 when read as milliseconds and would match nothing or
everything, silently: they are refused with what to type instead.
"""

from __future__ import annotations

import argparse
import datetime as dt
import re

from purpleflea.clock import now_ms, seconds_mistake, utc_iso

_AGO = re.compile(r"(\d+(?:\.\d+)?)([smhdw])")
#: The flags' help: the forms :func:`parse_when` takes.
TIME_HELP = (
    "a UTC date (2025-10-10), date and time (2025-10-10T20:30), time ago (6h) or ms since the epoch"
)
_UNIT_MS = {"s": 1_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000}


def parse_when(text: str, *, now: int | None = None) -> int:
    """``text`` as ms since the epoch (UTC); ``now`` (ms) anchors ``90m``-style times ago.

    Raises ValueError naming ``text`` and the forms it takes."""
    value = text.strip()
    if value.isdigit():
        ms = int(value)
        mistake = seconds_mistake(repr(text), ms)
        if mistake is not None:
            raise ValueError(f"{mistake}, or a date such as {utc_iso(ms * 1000)[:10]}")
        return ms
    ago = _AGO.fullmatch(value)
    if ago is not None:
        anchor = now_ms() if now is None else now
        return anchor - round(float(ago.group(1)) * _UNIT_MS[ago.group(2)])
    try:
        moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(
            f"{text!r} is not a time: give a UTC date (2025-10-10), a date and time "
            "(2025-10-10T20:30, UTC unless it names an offset), a time ago (90m, 6h, 7d) or "
            "milliseconds since the epoch"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return int(moment.timestamp() * 1000)


def time_arg(text: str) -> int:
    """:func:`parse_when` as an argparse ``type``: a bad value is a usage error naming it."""
    try:
        return parse_when(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
