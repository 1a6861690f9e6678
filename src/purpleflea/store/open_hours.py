"""The open hours' coverage factors, shared by the aggregates asking within a few seconds.

A closed hour's factors are stored (``coverage_factor``) and read back; an hour still open
(or closed less than ``aggregate.CLOSE_AFTER_MS`` ago) was estimated afresh by every
aggregate that touched it: the fit reads the day of minute rollups before it for every
market with snapshot events, 0.75 s of CPU per call on a day of 275 simulated markets, and
the dashboard refreshes, an SDK polling, the MCP tools all ask for the open hour. Its
factors are kept here for :data:`OPEN_HOUR_TTL_S`; each aggregate still reads the hour's
measure afresh and scales it by them, so a bucket's ``count`` is never older than its read,
and its ``est_*`` rest on a fit at most that old.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping

from purpleflea.engine.coverage import Factor

#: How long an open hour's fitted factors are reused: what ``/v1/markets`` shares its day
#: totals for; a minute rollup gains at most a few seconds of events meanwhile.
OPEN_HOUR_TTL_S = 5.0

#: A snapshot rollup row's key: (hour, market, exchange, side).
RowKey = tuple[int, str, str, str]
#: A market-hour: (hour, market).
MarketHour = tuple[int, str]


class OpenHours:
    """Fitted factors per market-hour, each kept :data:`OPEN_HOUR_TTL_S` from its fit."""

    def __init__(
        self, ttl_s: float = OPEN_HOUR_TTL_S, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.ttl_s = ttl_s
        self.clock = clock
        self._fits: dict[MarketHour, tuple[float, dict[RowKey, Factor]]] = {}

    def take(self, wanted: Mapping[MarketHour, set[RowKey]]) -> dict[RowKey, Factor]:
        """The kept factors of the market-hours in ``wanted`` whose fit is fresh and has a
        factor for every row wanted of it (a row new since the fit, an exchange's first
        event, sends its market-hour to a new fit)."""
        now = self.clock()
        found: dict[RowKey, Factor] = {}
        for market_hour, rows in wanted.items():
            kept = self._fits.get(market_hour)
            if kept is None or now - kept[0] >= self.ttl_s:
                continue
            if rows <= kept[1].keys():
                found.update(kept[1])
        return found

    def keep(self, fitted: Iterable[MarketHour], factors: Mapping[RowKey, Factor]) -> None:
        """Keep the factors just fitted for the market-hours ``fitted`` (stale fits go)."""
        now = self.clock()
        self._fits = {key: kept for key, kept in self._fits.items() if now - kept[0] < self.ttl_s}
        per_hour: dict[MarketHour, dict[RowKey, Factor]] = {key: {} for key in fitted}
        for row, factor in factors.items():
            rows = per_hour.get((row[0], row[1]))
            if rows is not None:
                rows[row] = factor
        for key, rows in per_hour.items():
            self._fits[key] = (now, rows)
