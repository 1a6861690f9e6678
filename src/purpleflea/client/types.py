"""The typed answers of the REST routes that have no struct in :mod:`purpleflea.model`.

:class:`HistoryPage` and :class:`Bucket` mirror the store's ``Page`` and ``Bucket`` rather
than import them: the SDK installs without the server's dependencies.
``tests/client/test_wire_types.py`` fails when the copies drift apart.
"""

from __future__ import annotations

from typing import Literal

import msgspec

from purpleflea.model import Liquidation

#: A history page's order, newest first: ``seq`` (as stored) or ``ts`` (event time).
HistoryOrder = Literal["seq", "ts"]


class HistoryPage(msgspec.Struct, frozen=True):
    """One page of history, newest first; pass ``next_cursor`` as ``cursor`` for the next (an
    integer for ``order="seq"``, ``"<ts>_<seq>"`` for ``order="ts"``)."""

    events: list[Liquidation]
    next_cursor: int | str | None


class Bucket(msgspec.Struct, frozen=True):
    """Totals of one ``interval`` and group: ``count`` events of ``size_usd`` in all, of which
    ``long_usd`` liquidated longs and ``short_usd`` shorts."""

    start_ms: int
    group: str
    count: int
    size_usd: float
    long_usd: float
    short_usd: float
    #: Measured plus what throttled (snapshot) feeds are estimated to have hidden (0 from a
    #: server older than the estimate).
    est_count: int = 0
    est_size_usd: float = 0.0
    #: What the estimate rests on: ``none`` (nothing estimated), ``complete_venues`` (fitted on
    #: complete venues of the same market and hour), ``prior_only`` (a flat 2x prior: no
    #: complete venue to calibrate on), ``mixed``; empty from a server older than the label.
    est_calibration: str = ""


class CoverageHour(msgspec.Struct, frozen=True):
    """One exchange's UTC hour: the share of it its connections were up and, for snapshot
    venues, ``pressure``: the share of symbol-seconds that carried an event."""

    exchange: str
    hour: int
    uptime: float
    up_s: float
    connections: int
    symbol_seconds: int | None
    symbols: int | None
    pressure: float | None


class CoverageGap(msgspec.Struct, frozen=True):
    """A window a connection missed; ``repair`` is ``repaired`` (``repaired_events`` fetched
    from the venue's REST history), ``open`` (``note`` says why) or ``pending``."""

    id: str
    exchange: str
    connection: str
    start: int
    end: int | None
    reason: str
    repair: str
    repaired_events: int
    note: str


class CoverageImport(msgspec.Struct, frozen=True):
    """One exchange's UTC hour of events that came in by ``purpleflea import``: ``events`` of
    them from ``first`` to ``last`` (ms), tagged ``coverage`` (the venue's feed class). No
    uptime is known (``uptime`` is None): a recording holds no connection sessions."""

    exchange: str
    hour: int
    coverage: str
    events: int
    first: int
    last: int
    uptime: float | None = None


class Coverage(msgspec.Struct, frozen=True):
    """Uptime per exchange and hour in ``[start, end)`` (ms), the gaps in it, and the hours
    of imported events (empty from a server older than them)."""

    start: int
    end: int
    hours: list[CoverageHour]
    gaps: list[CoverageGap]
    imported: list[CoverageImport] = msgspec.field(default_factory=list)
