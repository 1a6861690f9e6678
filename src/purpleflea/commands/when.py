"""Points in time as the commands take them: ``--start``/``--end`` of ``history`` and ``export``.

A user types what they have at hand: a date from a chart (``2025-10-10``), a moment
(``2025-10-10T20:30``, UTC unless it says otherwise), how long ago (``90m``, ``6h``, ``7d``), or
the API's milliseconds since the epoch (what every event's ``ts`` is). Seconds since the epoch,
the other common clock, look like 1970 when read as milliseconds and would match nothing or
everything, silently: they are refused with what to type instead.
"""

from __future__ import annotations

import argparse

# parse_when is the clock's (the MCP tools read times the same way), named here for the CLI.
from purpleflea.clock import parse_when

#: The flags' help: the forms :func:`parse_when` takes.
TIME_HELP = (
    "a UTC date (2025-10-10), date and time (2025-10-10T20:30), time ago (6h), now or ms since "
    "the epoch"
)


def time_arg(text: str) -> int:
    """:func:`parse_when` as an argparse ``type``: a bad value is a usage error naming it."""
    try:
        return parse_when(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
