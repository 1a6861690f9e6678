"""Open-interest and mark-price pollers over the exchanges' public REST endpoints.

The heatmap needs, per instrument, one side's open interest in coins and the mark price. Each
venue's ``open_interest.py`` says where and reads its bulk endpoint with a pure parser (body
bytes -> :class:`Reading` rows, contracts converted with the instrument catalog);
:class:`Poller` fetches them on an interval, slows down when told to (HTTP 429/418 with
``Retry-After``), and hands :class:`~purpleflea.model.MarketSnapshot` batches to a sink. A
venue whose endpoint answers for one part of it at a time (Hyperliquid's perp dexes) is
asked part by part, paced, and a part that fails leaves the others delivered.
Open interest is one side (longs = shorts).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from purpleflea.clock import retry_after_seconds
from purpleflea.ingest.alarm import Alarm
from purpleflea.ingest.backoff import MAX_RETRY_AFTER
from purpleflea.ingest.paging import fetch_pages
from purpleflea.model import Catalog, MarketSnapshot
from purpleflea.venues import registry
from purpleflea.venues._open_interest import PollError, as_list, json_body
from purpleflea.venues.venue import PerScope, PerSymbol, PollSource, Reading, ReadingsParser

log = logging.getLogger("purpleflea.ingest.pollers")


Parse = ReadingsParser

#: Every venue's open-interest and mark-price endpoints.
POLL_SOURCES: tuple[PollSource, ...] = registry.poll_sources()


def merge_bodies(bodies: list[bytes]) -> bytes:
    """Join several JSON object bodies into one: each top-level list is concatenated under its
    own key, other fields are dropped. OKX's open interest and marks both answer ``data``; HTX's
    open interest answers ``data`` and its tickers ``ticks``; Deribit's summaries of several
    currencies each answer ``result``."""
    if len(bodies) == 1:
        return bodies[0]
    lists: dict[str, list[Any]] = {}
    for body in bodies:
        found = json_body("merge", body)
        if not isinstance(found, dict):
            raise PollError(f"merge open interest: expected an object, got {type(found).__name__}")
        for key, value in found.items():
            if isinstance(value, list):
                lists.setdefault(key, []).extend(as_list("merge", value))
    return json.dumps(lists).encode()


MarketOf = Callable[[str, str], str | None]
Sink = Callable[[list[MarketSnapshot]], None]


@dataclass
class PollStats:
    polls: int = 0
    snapshots: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    last_error: str = ""


class Poller:
    """Polls one source forever; answers 429/418 by waiting as long as the exchange asks."""

    def __init__(
        self,
        source: PollSource,
        client: httpx.AsyncClient,
        sink: Sink,
        market_of: MarketOf,
        instruments: Catalog,
        *,
        clock: Callable[[], float] = time.time,
        alarm: Alarm | None = None,
    ) -> None:
        self.source = source
        # Shared with the exchange's websocket connections: one WARNING per exchange outage.
        self.alarm = alarm or Alarm()
        self.client = client
        self.sink = sink
        self.market_of = market_of
        self.instruments = instruments
        self.clock = clock
        self.stats = PollStats()
        #: The scopes a ``per_scope`` source asks: the last list read.
        self.scopes = source.per_scope.known if source.per_scope is not None else ()

    async def poll_once(self) -> float:
        """Fetch, parse and deliver once; returns how long to wait before the next poll."""
        source = self.source
        if source.per_scope is not None:
            return await self._poll_scopes(source.per_scope)
        try:
            bodies = []
            for url in source.urls:
                for response in await fetch_pages(
                    self.client, url, source.next_page, method=source.method, payload=source.payload
                ):
                    if response.status_code in (418, 429):
                        return self._rate_limited(response)
                    response.raise_for_status()
                    self._check_answer(response)
                    bodies.append(response.content)
            if source.next_page is None:
                readings = source.parse(merge_bodies(bodies), self.instruments)
            else:  # pages are parsed alone
                readings = [r for body in bodies for r in source.parse(body, self.instruments)]
            if source.per_symbol is not None:
                found = await self._per_symbol(source.per_symbol, readings)
                if isinstance(found, float):
                    return found
                readings = found
        except (httpx.HTTPError, PollError) as exc:
            self._error(type(exc).__name__, str(exc))
            return source.interval
        self._deliver(readings)
        return source.interval

    def _check_answer(self, response: httpx.Response) -> None:
        """Raise :class:`PollError` with the venue's words if ``response`` carries its error
        inside an HTTP 200 body (``source.error``): merged or parsed, such a body would pass
        for a venue listing nothing, a poll counted as good with no reading. Every body is
        checked: the urls' (and their pages'), each per-symbol and each per-scope answer."""
        source = self.source
        said = source.error(response.content) if source.error is not None else None
        if said is not None:
            raise PollError(f"{source.exchange} answered {response.url}: {said}")

    async def _per_symbol(self, spec: PerSymbol, marks: list[Reading]) -> list[Reading] | float:
        """Open interest of each of ``spec.symbols`` that has a mark, one request each, paced
        by ``spec.pause``; a float is the wait the exchange asked for (rate limited)."""
        price = {reading.symbol: reading.mark_price for reading in marks}
        readings = []
        for symbol in spec.symbols:
            if symbol not in price:
                continue
            response = await self.client.get(spec.url, params={"symbol": symbol})
            if response.status_code in (418, 429):
                return self._rate_limited(response)
            response.raise_for_status()
            self._check_answer(response)
            _, coins = spec.parse(response.content)
            readings.append(Reading(symbol, price[symbol], coins))
            await asyncio.sleep(spec.pause)
        return readings

    async def _poll_scopes(self, spec: PerScope) -> float:
        """Ask the list of scopes, then each scope ``spec.pause`` seconds apart, delivering
        each one's readings as they come; one that fails is left out, the others delivered."""
        source, started = self.source, self.clock()
        try:
            body = await self._post(spec.listing)
            if isinstance(body, float):
                return body
            self.scopes = spec.parse(body)
            self.alarm.recovered(self._scope_key("list"))
        except (httpx.HTTPError, PollError) as exc:
            self._error(type(exc).__name__, f"list: {exc}", self._scope_key("list"))
        read = 0
        for scope in self.scopes:
            await asyncio.sleep(spec.pause)
            try:
                body = await self._post(spec.request(scope))
                if isinstance(body, float):
                    return body
                readings = [
                    reading
                    for reading in source.parse(body, self.instruments)
                    if spec.scope_of(reading.symbol) == scope  # never another scope's symbol
                ]
            except (httpx.HTTPError, PollError) as exc:
                self._error(type(exc).__name__, f"{scope!r}: {exc}", self._scope_key(scope))
                continue
            self.alarm.recovered(self._scope_key(scope))
            self.sink(self._snapshots(readings))
            read += 1
        if read:
            self.stats.polls += 1
            self.alarm.recovered(self._alarm_key)
        return max(spec.pause, source.interval - (self.clock() - started))

    async def _post(self, payload: object) -> bytes | float:
        """One request of the source's first url; a float is the wait a rate limit asked."""
        source = self.source
        response = await self.client.request(source.method, source.urls[0], json=payload)
        if response.status_code in (418, 429):
            return self._rate_limited(response)
        response.raise_for_status()
        self._check_answer(response)
        return response.content

    def _scope_key(self, scope: str) -> str:
        return f"{self._alarm_key} {scope!r}"

    def _deliver(self, readings: list[Reading]) -> None:
        snapshots = self._snapshots(readings)
        self.stats.polls += 1
        self.alarm.recovered(self._alarm_key)
        self.sink(snapshots)

    def _snapshots(self, readings: list[Reading]) -> list[MarketSnapshot]:
        source = self.source
        ts = int(self.clock() * 1000)
        snapshots = []
        for reading in readings:
            market = self.market_of(source.exchange, reading.symbol)
            if market is None:
                continue
            snapshots.append(
                MarketSnapshot(
                    exchange=source.exchange,
                    symbol=reading.symbol,
                    market=market,
                    ts=ts,
                    mark_price=reading.mark_price,
                    open_interest=reading.open_interest,
                    open_interest_usd=reading.open_interest * reading.mark_price,
                )
            )
        self.stats.snapshots += len(snapshots)
        return snapshots

    def _rate_limited(self, response: httpx.Response) -> float:
        wait = _retry_after(response, default=self.source.interval * 2)
        self._error("rate_limited", f"HTTP {response.status_code}; waiting {wait:.0f} s")
        return wait

    async def run(self) -> None:
        while True:
            await asyncio.sleep(await self.poll_once())

    @property
    def _alarm_key(self) -> str:
        return f"{self.source.exchange} poller"

    def _error(self, kind: str, message: str, key: str = "") -> None:
        self.stats.errors[kind] = self.stats.errors.get(kind, 0) + 1
        self.stats.last_error = f"{kind}: {message}"
        loud = self.alarm.failed(key or self._alarm_key)
        (log.warning if loud else log.debug)(
            "%s: open-interest poll of %s failed (%s); retrying every %.0f s",
            self.source.exchange,
            self.source.urls[0],
            self.stats.last_error,
            self.source.interval,
        )


def _retry_after(response: httpx.Response, default: float) -> float:
    """The wait a rate limit asks for (seconds or an HTTP date), at least a second and at most
    :data:`MAX_RETRY_AFTER`; ``default`` when it names none or none that parses."""
    seconds = retry_after_seconds(response.headers.get("Retry-After"), now=time.time())
    if seconds is None:
        return default
    return min(max(1.0, seconds), MAX_RETRY_AFTER)


__all__ = [
    "POLL_SOURCES",
    "Parse",
    "PerScope",
    "PerSymbol",
    "PollError",
    "PollSource",
    "PollStats",
    "Poller",
    "Reading",
    "merge_bodies",
]
