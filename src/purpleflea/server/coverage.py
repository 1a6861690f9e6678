"""Coverage on the server: the ledger's drains into the store, and ``GET /v1/coverage``.

The node that runs the source (roles ``all`` and ``ingest``) owns a
:class:`~purpleflea.ingest.uptime.Ledger`, which the live ingest or the simulator feeds;
:meth:`CoverageService.run` drains it into the coverage store every ``interval_s`` and once
more on close. Every node serving clients answers ``GET /v1/coverage`` from the store:
per exchange and hour the uptime share and, for snapshot venues, the throttle's pressure,
the gaps overlapping the window with their repair outcome, and the hours of imported events
(``purpleflea import``: no uptime is known for them, only what the file holds).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from purpleflea.ingest.uptime import HOUR_MS, Gap, HourRow, Ledger
from purpleflea.outage import OutageRecord, describe
from purpleflea.server import http
from purpleflea.server.keys import KeyInfo
from purpleflea.server.openapi_schemas import epoch_ms, error, json_content
from purpleflea.store.coverage import CoverageStore, ImportedHour

log = logging.getLogger("purpleflea.coverage")

Handler = Callable[[Request], Awaitable[Response]]
AuthedHandler = Callable[[Request, KeyInfo], Awaitable[Response]]

#: The default window: the last day.
DEFAULT_SPAN_MS = 24 * HOUR_MS
#: The longest window one request may ask for (31 days of hours per exchange).
MAX_SPAN_MS = 31 * 24 * HOUR_MS
MAX_HOURS = 31 * 24 * 16
MAX_GAPS = 1_000


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass
class CoverageService:
    """The coverage store, and the ledger this node records (None on API-only nodes)."""

    store: CoverageStore
    ledger: Ledger | None = None
    interval_s: float = 10.0
    clock: Callable[[], int] = _now_ms
    _closed: bool = field(default=False, init=False)
    #: The store's outage, as this recorder's drains meet it (one line when it starts, one when
    #: it ends).
    _outage: OutageRecord = field(default_factory=OutageRecord, init=False)

    async def flush(self) -> None:
        """Drain the ledger into the store now (a failure keeps nothing: logged, retried
        from the next drain's state, which has lost only this drain's deltas)."""
        if self.ledger is None:
            return
        hours, gaps = self.ledger.drain(self.clock())
        try:
            await self.store.record(hours, gaps)
        except Exception as exc:  # a storage fault must not end recording
            # One line when an outage starts (a full disk fails every drain; the store's own
            # lines say the rest), none with a traceback for an expected OSError-like fault.
            if self._outage.failed(describe(exc)):
                log.error(
                    "coverage: could not record %d hours and %d gaps: %s: %s "
                    "(retrying every %.0f s; the next line says when it recovers)",
                    len(hours),
                    len(gaps),
                    type(exc).__name__,
                    exc,
                    self.interval_s,
                )
            return
        ended = self._outage.recovered()
        if ended is not None:
            log.warning(
                "coverage: recording recovered after %.0f s (%d failed drains)",
                ended.seconds,
                ended.failures,
            )

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            await self.flush()

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        await self.flush()
        await self.store.close()


def hour_view(row: HourRow) -> dict[str, Any]:
    """One stored hour as ``/v1/coverage`` lists it."""
    up_s = row.up_ms / 1000 / max(1, row.connections)
    pressure = None
    if row.symbol_seconds is not None and row.symbols and up_s > 0:
        pressure = round(min(1.0, row.symbol_seconds / (row.symbols * up_s)), 6)
    return {
        "exchange": row.exchange,
        "hour": row.hour_ms,
        "uptime": round(row.up_ms / row.watched_ms, 6) if row.watched_ms else 0.0,
        "up_s": round(up_s, 3),
        "connections": row.connections,
        "symbol_seconds": row.symbol_seconds,
        "symbols": row.symbols,
        "pressure": pressure,
    }


def gap_view(gap: Gap) -> dict[str, Any]:
    """One stored gap as ``/v1/coverage`` lists it."""
    return {
        "id": gap.id,
        "exchange": gap.exchange,
        "connection": gap.connection,
        "start": gap.start_ms,
        "end": gap.end_ms,
        "reason": gap.reason,
        "repair": gap.repair,
        "repaired_events": gap.repaired_events,
        "note": gap.note,
    }


def imported_view(row: ImportedHour) -> dict[str, Any]:
    """One hour of imported events as ``/v1/coverage`` lists it: no uptime (a recording
    holds no connection sessions), what the events show, and the feed's coverage class."""
    return {
        "exchange": row.exchange,
        "hour": row.hour_ms,
        "coverage": row.coverage,
        "events": row.events,
        "first": row.first_ms,
        "last": row.last_ms,
        "uptime": None,
    }


class CoverageRoutes:
    """``GET /v1/coverage?exchange=&start=&end=`` for keyed clients."""

    def __init__(
        self,
        service: CoverageService,
        *,
        authed: Callable[[AuthedHandler], Handler],
        known_exchanges: tuple[str, ...],
    ) -> None:
        self.service = service
        self.authed = authed
        self.known_exchanges = known_exchanges

    def routes(self) -> list[Route]:
        return [Route("/v1/coverage", self.authed(self.coverage))]

    def _window(self, params: Any) -> tuple[int, int]:
        start = http.epoch_ms(params, "start", None)
        end = http.epoch_ms(params, "end", None, low=1)
        return _window_of(start, end, self.service.clock())

    async def coverage(self, request: Request, _: KeyInfo) -> Response:
        params = request.query_params
        exchanges = http.exchanges(params, self.known_exchanges)
        start, end = self._window(params)
        store = self.service.store
        # An hour that began before start still covers part of the window.
        hours = await store.hours(exchanges, start - start % HOUR_MS, end, MAX_HOURS)
        gaps = await store.gaps(exchanges, start, end, MAX_GAPS)
        imported = await store.imported(exchanges, start - start % HOUR_MS, end, MAX_HOURS)
        return http.json_response(
            {
                "start": start,
                "end": end,
                "hours": [hour_view(h) for h in hours],
                "gaps": [gap_view(g) for g in gaps],
                "imported": [imported_view(i) for i in imported],
            }
        )


def _window_of(start: int | None, end: int | None, now: int) -> tuple[int, int]:
    """The window asked for: ``end`` defaults to now (or just after ``start``), ``start`` to a
    day before ``end``; a window over 31 days is cut to its last 31 (the answer says so)."""
    http.check_window(start, end)
    if end is None:
        end = now if start is None else max(now, start + 1)
    if start is None:
        start = end - DEFAULT_SPAN_MS
    return max(start, end - MAX_SPAN_MS), end


def coverage_paths(exchanges: Sequence[str]) -> dict[str, Any]:
    """The OpenAPI entry of ``GET /v1/coverage`` (merged into ``openapi.document``)."""
    nullable_int = {"type": ["integer", "null"]}
    hour = _object(
        {
            "exchange": {"type": "string"},
            "hour": {"type": "integer", "description": "The UTC hour's start (ms)."},
            "uptime": {"type": "number", "minimum": 0, "maximum": 1},
            "up_s": {"type": "number", "minimum": 0},
            "connections": {"type": "integer", "minimum": 1},
            "symbol_seconds": nullable_int,
            "symbols": nullable_int,
            "pressure": {
                "type": ["number", "null"],
                "description": "Snapshot venues: the share of symbol-seconds that carried an "
                "event (near 1, the throttle hides much); null elsewhere.",
            },
        }
    )
    gap = _object(
        {
            "id": {"type": "string"},
            "exchange": {"type": "string"},
            "connection": {"type": "string"},
            "start": {"type": "integer"},
            "end": {"type": ["integer", "null"], "description": "null while still down."},
            "reason": {"type": "string", "description": "closed, silent, unreachable, ..."},
            "repair": {"type": "string", "enum": ["pending", "repaired", "open"]},
            "repaired_events": {"type": "integer", "minimum": 0},
            "note": {"type": "string", "description": "Why an open gap stays open."},
        }
    )
    imported = _object(
        {
            "exchange": {"type": "string"},
            "hour": {"type": "integer", "description": "The UTC hour's start (ms)."},
            "coverage": {
                "type": "string",
                "enum": ["complete", "snapshot", "sampled"],
                "description": "The imported events' coverage tag: the venue's feed class "
                "(a recording is no more complete than the feed it copied).",
            },
            "events": {"type": "integer", "minimum": 1},
            "first": {"type": "integer", "description": "The hour's first imported ts (ms)."},
            "last": {"type": "integer", "description": "The hour's last imported ts (ms)."},
            "uptime": {
                "type": "null",
                "description": "Unknown: a recording holds no connection sessions, so an "
                "hour or minute without events may be one its recorder did not run.",
            },
        }
    )
    body = _object(
        {
            "start": {"type": "integer"},
            "end": {"type": "integer"},
            "hours": {"type": "array", "items": hour},
            "gaps": {"type": "array", "items": gap},
            "imported": {
                "type": "array",
                "items": imported,
                "description": "Per exchange and hour, events that came in by "
                "`purpleflea import` (no uptime is known for them).",
            },
        }
    )
    return {
        "/v1/coverage": {
            "get": {
                "operationId": "coverage",
                "summary": "Per exchange and hour: uptime and the throttle's pressure; the "
                "gaps (start, end, reason, repair outcome) overlapping the window; and the "
                "hours of imported events (no uptime known, their coverage class).",
                "parameters": [
                    {
                        "name": "exchange",
                        "in": "query",
                        "required": False,
                        "schema": {
                            "type": "array",
                            "items": {"type": "string", "enum": list(exchanges)},
                            "maxItems": 500,
                        },
                        "description": "Exchange ids (repeat or comma-separate).",
                    },
                    {
                        "name": "start",
                        "in": "query",
                        "required": False,
                        "schema": epoch_ms(0),
                        "description": "Window start (ms since epoch; default end - 24 h). A "
                        "value from 1e9 to 1e11 looks like seconds (as ms it is 1970-1973) and "
                        "is answered 400 with the ms to send.",
                    },
                    {
                        "name": "end",
                        "in": "query",
                        "required": False,
                        "schema": epoch_ms(1),
                        "description": "Window end (ms since epoch; default now), refused as "
                        "start is when it looks like seconds. With start, end must "
                        "be greater than start, else 400; a window over 31 days is cut to its "
                        "last 31 (the answer's start says where it begins).",
                    },
                ],
                "responses": {
                    "200": {"description": "OK", "content": json_content(body)},
                    **{str(status): error(status) for status in (400, 401, 429)},
                },
                "security": [{"bearer": []}, {"apiKeyHeader": []}, {"apiKeyQuery": []}],
            }
        }
    }


def _object(properties: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "required": list(properties)}
