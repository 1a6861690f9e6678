"""How the tools read what a language model sends: one name where a list is asked, a word in
another case or the plural, a number as a string, a time as a date or "90m" ago, a window as
"1h". Each reader returns what the tool's type takes, or raises ValueError naming the value and
the forms taken (pydantic reports it as the argument's error); anything else passes unchanged
to the type's own check.
"""

from __future__ import annotations

import math
import re

from purpleflea.clock import SECONDS_LIKE, now_ms, parse_when, seconds_mistake, utc_iso
from purpleflea.formatting import read_usd
from purpleflea.model import ORDER_SIDE_MEANT, ORDER_SIDES

_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*(m|mins?|minutes?|h|hrs?|hours?|d|days?|w|weeks?)?")
_UNIT_MINUTES = {"m": 1, "h": 60, "d": 1440, "w": 10_080}

#: How far ahead of this clock an ``end_ms`` is still taken: the tracker's clock may differ a
#: little. Further ahead is a mistake (a wrong year, a local time sent as UTC).
FUTURE_SLACK_MS = 5 * 60_000


def listed(value: object) -> object:
    """``"BTC-PERP"`` or ``"BTC-PERP, ETH-PERP"`` where a list is asked: models send that."""
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


def single(value: object) -> object:
    """``["BTC-PERP"]`` where one name is asked: models send the list form of a sibling tool's
    argument. The name is stripped, so a blank one reads as empty."""
    if isinstance(value, list) and len(value) == 1:
        value = value[0]
    return value.strip() if isinstance(value, str) else value


def word(value: object) -> object:
    """A choice in any case, and ``longs``/``shorts`` for ``long``/``short``."""
    if not isinstance(value, str):
        return value
    text = value.strip().lower()
    return text[:-1] if text in ("longs", "shorts") else text


#: What a model sends for "no filter" where the tool means it by leaving the argument out
#: (heatmap_clusters' side takes "both": its siblings were sent it too).
_EVERY = ("both", "all", "any", "*")


def side_or_every(value: object) -> object:
    """A side as :func:`word` reads it, or None (both sides) for ``"both"``, ``"all"``."""
    value = word(value)
    if value in ORDER_SIDES:  # a liquidation order's side, as venues send it
        raise ValueError(f"{value!r} is an order side; {ORDER_SIDE_MEANT}")
    return None if value in _EVERY else value


def market_or_every(value: object) -> object:
    """A market as :func:`single` reads it, or None (every market) for ``"all"``, ``"*"``;
    no market is named so (they end in -PERP or a date)."""
    value = single(value)
    return None if isinstance(value, str) and value.lower() in _EVERY else value


def minutes(value: object) -> object:
    """A window as minutes: a number, or a string such as ``"30"``, ``"90m"``, ``"1h"``,
    ``"2 days"``."""
    if not isinstance(value, str):
        return value
    number = _number(value)
    if number is not None:
        return int(number) if number.is_integer() else number
    found = _DURATION.fullmatch(value.strip().lower())
    if found is None:
        raise ValueError(
            f"{value!r} is not a number of minutes: give minutes (60) or a duration "
            "such as '90m', '6h', '2d'"
        )
    amount = float(found.group(1)) * _UNIT_MINUTES[(found.group(2) or "m")[0]]
    return int(amount) if amount.is_integer() else amount


def usd(value: object) -> object:
    """An amount of USD: a number, or a string as :func:`~purpleflea.formatting.read_usd`
    reads it, such as ``"100000"``, ``"$100k"``, ``"1.5M"``, ``"250,000 USD"``."""
    return read_usd(value) if isinstance(value, str) else value


def _number(text: str) -> float | None:
    """``text`` as the tool's own float type reads a string ("1e5", ".5"), else None: the
    readers add forms to what the type took, never take one away."""
    try:
        number = float(text)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def end_ms(value: object) -> object:
    """The end of a window: ms since the epoch, ``"now"``, a UTC date or date and time
    (``"2025-10-10T20:30"``) or a time ago (``"90m"``). Seconds since the epoch, which read
    as ms fall in January 1970, are refused with the value to send; a time more than
    :data:`FUTURE_SLACK_MS` ahead, with the time now."""
    if isinstance(value, str):
        text = value.strip().lower()
        if text == "now":
            return None
        value = parse_when(value)  # checked below as a number: "0" and "1970-01-01" too
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # as the int type takes it, and checked as one
    if isinstance(value, int) and not isinstance(value, bool):
        mistake = seconds_mistake("end_ms", value)
        if mistake is not None:
            raise ValueError(mistake)
        if value < SECONDS_LIKE.start:
            # 60 read as ms is 1970-01-01T00:00:00.060Z: a model meant minutes or hours ago.
            # Below 0 the window's start reached the server, refused as a 'start' never sent.
            ago = f"{value}m" if value > 0 else "90m"
            raise ValueError(
                f"end_ms {value} is {utc_iso(value)}, before any liquidation: send ms since "
                f"the epoch, 'now', a date, or a time ago such as '{ago}'"
            )
        now = now_ms()
        if value > now + FUTURE_SLACK_MS:
            # A window that has not happened yet holds no liquidation: it read as a calm one.
            raise ValueError(
                f"end_ms {value} is {utc_iso(value)}, in the future (now is {utc_iso(now)}): "
                "omit end_ms for now, or send a past time (a UTC date and time, or a time ago "
                "such as '2h')"
            )
    return value
