"""Live ingest: every exchange's liquidation feed, its catalog and its REST pollers, together.

:class:`LiveIngest` is what ``purpleflea serve --source live`` runs::

    ingest = LiveIngest(on_event, on_snapshot, cache_path=data_dir / "instruments.json")
    await ingest.start()      # returns at once; connections run as background tasks
    ...
    ingest.stats()            # per-connection counters for the health endpoint
    await ingest.stop()

Catalogs start from the cached (or bundled) snapshot, are fetched at start (bounded wait, so
no network only delays the start by ``catalog_wait``) and refreshed periodically; an
exchange's catalog is fetched again early when its feed drops a contract it has not dropped
before for an unknown size (a coin listed since the last fetch). Each
connection is one :func:`~purpleflea.ingest.connection.run_feed` task; each exchange's
connections and poller share one :class:`Alarm`, so an unreachable exchange logs one WARNING.
Events whose contract size is unknown never reach ``on_event`` (counted as ``unsized``).
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable, Coroutine, Mapping, Sequence
from pathlib import Path
from typing import Any

import httpx

from purpleflea.ingest import feeds, repair
from purpleflea.ingest.alarm import Alarm
from purpleflea.ingest.backoff import Backoff
from purpleflea.ingest.catalog import SOURCES, Catalogs, Source
from purpleflea.ingest.connection import run_feed
from purpleflea.ingest.connection_stats import ConnectionStats
from purpleflea.ingest.dedupe import Deduper
from purpleflea.ingest.feed_spec import FeedSpec, Sink
from purpleflea.ingest.pollers import POLL_SOURCES, Poller, PollSource
from purpleflea.ingest.uptime import Gap, Ledger
from purpleflea.model import MarketSnapshot, VenueLiquidation
from purpleflea.venues import registry
from purpleflea.venues.venue import Absent, RepairSource

log = logging.getLogger("purpleflea.ingest.live")

SnapshotSink = Callable[[MarketSnapshot], None]

#: Normalized market name (``BTC-PERP``) of an exchange symbol; None if not a market.
market_of = registry.market_of


class LiveIngest:
    """Runs the live feeds of ``exchanges`` (default: every one with a normalizer).

    ``urls`` overrides connection endpoints by connection name (see
    :data:`purpleflea.ingest.feeds.URLS`); ``catalog_sources``/``poll_sources``/``repairs``
    override the REST endpoints (tests point them at loopback). ``poll_sources=()`` turns
    polling off.

    Uptime, gaps and pressure go to :attr:`ledger` (``ingest/uptime.py``); a gap closed by a
    reconnect is repaired from the exchange's REST history where it has one
    (``ingest/repair.py``), each repaired event deduplicated against the live feed's ids.
    """

    def __init__(
        self,
        on_event: Sink,
        on_snapshot: SnapshotSink | None = None,
        *,
        exchanges: Sequence[str] | None = None,
        urls: Mapping[str, str] | None = None,
        cache_path: Path | None = None,
        catalogs: Catalogs | None = None,
        catalog_sources: tuple[Source, ...] = SOURCES,
        catalog_refresh_s: float = 3600.0,
        catalog_wait_s: float = 10.0,
        catalog_check_s: float = 30.0,
        catalog_early_s: float = 300.0,
        poll_sources: tuple[PollSource, ...] = POLL_SOURCES,
        backoff: Callable[[], Backoff] = Backoff,
        open_timeout: float = 10.0,
        http_timeout: float = 10.0,
        repairs: Mapping[str, RepairSource | Absent] = registry.REPAIRS,
        ledger: Ledger | None = None,
        tune: Callable[[FeedSpec], FeedSpec] = lambda spec: spec,
    ) -> None:
        self._on_event = on_event
        self.on_snapshot = on_snapshot
        self.exchanges = list(feeds.available() if exchanges is None else exchanges)
        self._asked = None if exchanges is None else list(exchanges)
        self.urls = dict(urls or {})
        self.catalogs = catalogs or Catalogs(cache_path)
        self.catalog_sources = catalog_sources
        self.catalog_refresh_s = catalog_refresh_s
        self.catalog_wait_s = catalog_wait_s
        #: Seconds between looks at the feeds' unsized symbols, and the least between two
        #: early fetches of one exchange's catalog (a venue listing many coins at once is
        #: not asked once per coin).
        self.catalog_check_s = catalog_check_s
        self.catalog_early_s = catalog_early_s
        self.poll_sources = poll_sources
        self.backoff = backoff
        self.open_timeout = open_timeout
        self.http_timeout = http_timeout
        #: Applied to every connection spec before it runs (tests shorten its timers).
        self.tune = tune
        self.specs: list[FeedSpec] = []
        self.pollers: list[Poller] = []
        self._stats: list[ConnectionStats] = []
        self._alarms: dict[str, Alarm] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._client: httpx.AsyncClient | None = None
        self.repairs = repairs
        snapshot = [e.id for e in registry.EXCHANGES.values() if e.coverage == "snapshot"]
        self.ledger = ledger if ledger is not None else Ledger(snapshot)
        self._dedupers: dict[str, Deduper] = {}
        self._repairing: set[asyncio.Task[None]] = set()

    def on_event(self, event: VenueLiquidation, received_at: int) -> None:
        """Every live or repaired event: counted for pressure, then handed on."""
        self.ledger.event(event.exchange, event.symbol, event.ts or received_at)
        self._on_event(event, received_at)

    async def start(self) -> None:
        """Fetch catalogs (bounded wait), then start every connection and poller task."""
        if self._tasks:
            raise RuntimeError("LiveIngest already started")
        self._client = httpx.AsyncClient(timeout=self.http_timeout, follow_redirects=True)
        await self._refresh_catalogs(within=self.catalog_wait_s)
        specs = feeds.build_feeds(self.catalogs, self.exchanges, self.urls)
        for spec in specs:
            self._run(spec)
        self._start_pollers(self._client)
        self._spawn("catalog refresh", self._refresh_forever())
        growing = [spec for spec in self.specs if spec.more is not None]
        if growing:
            self._spawn("more connections", self._grow_forever(growing))
        log.info(
            "live ingest started: %d connections over %d exchanges, %d pollers",
            len(self.specs),
            len(self.exchanges),
            len(self.pollers),
        )

    def _run(self, spec: FeedSpec) -> None:
        """Start ``spec``'s connection task (with its stats, uptime and the exchange's
        deduper and alarm)."""
        spec = self.tune(spec)
        self.specs.append(spec)
        stats = ConnectionStats(spec.name, exchange=spec.exchange, url=spec.url)
        self._stats.append(stats)
        self.ledger.watch(spec.name, spec.exchange, _now_ms())
        self._spawn(
            spec.name,
            run_feed(
                spec,
                self.on_event,
                stats,
                backoff=self.backoff(),
                alarm=self._alarm(spec.exchange),
                open_timeout=self.open_timeout,
                # One deduper per exchange: repaired events meet the live ids.
                deduper=self._deduper(spec.exchange),
                watch=_Watch(self),
            ),
        )

    async def _grow_forever(self, growing: list[FeedSpec]) -> None:
        """Every ``follow_catalog`` seconds, open the connections an exchange's catalog needs
        past those running (``Connection.more``): a dYdX market listed when every connection
        holds 32, Bybit topics past a connection's args limit. Before, they waited for the
        next start of the process."""
        while True:
            await asyncio.sleep(min(spec.follow_catalog for spec in growing))
            for spec in growing:
                try:
                    new = feeds.grown(spec, {s.name for s in self.specs}, self.urls)
                except Exception:  # a venue's bug must not end the looks
                    log.exception("%s: looking for connections to add failed", spec.exchange)
                    continue
                for added in new:
                    log.info(
                        "%s: opening %s for contracts listed past its connections' limits",
                        spec.exchange,
                        added.name,
                    )
                    self._run(added)

    async def stop(self) -> None:
        """Cancel every task and close the HTTP client; safe to call twice."""
        tasks, self._tasks = [*self._tasks, *self._repairing], []
        self._repairing.clear()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    def stats(self) -> list[dict[str, object]]:
        """One counters dict per websocket connection (see ``ConnectionStats.snapshot``)."""
        return [stats.snapshot() for stats in self._stats]

    def _deduper(self, exchange: str) -> Deduper:
        return self._dedupers.setdefault(exchange, Deduper())

    def gap_closed(self, gap: Gap) -> None:
        """Repair ``gap`` in the background (its outcome goes to the ledger)."""
        task = asyncio.create_task(self._repair(gap), name=f"ingest:repair {gap.id}")
        self._repairing.add(task)
        task.add_done_callback(self._repairing.discard)

    async def _repair(self, gap: Gap) -> None:
        source = self.repairs.get(gap.exchange, Absent(f"no venue knows {gap.exchange!r}"))
        deduper = self._deduper(gap.exchange)

        def deliver(event: VenueLiquidation) -> bool:
            if deduper.seen(event.id, time.monotonic()):
                return False
            self.on_event(event, _now_ms())
            return True

        if self._client is None:
            return
        try:
            outcome = await repair.repair(
                gap, source, self._client, self.catalogs.get(gap.exchange), deliver, _now_ms()
            )
        except Exception as exc:  # a parser bug must not vanish: the gap says so
            log.exception("%s: repair of gap %s failed", gap.exchange, gap.id)
            outcome = repair.settled(gap, open_reason=f"error: {exc!r}")
        self.ledger.settle(outcome)

    def _alarm(self, exchange: str) -> Alarm:
        return self._alarms.setdefault(exchange, Alarm())

    def _spawn(self, name: str, job: Coroutine[Any, Any, None]) -> None:
        self._tasks.append(asyncio.create_task(job, name=f"ingest:{name}"))

    def _start_pollers(self, client: httpx.AsyncClient) -> None:
        if self.on_snapshot is None:
            return
        for source in sources_to_poll(self.poll_sources, self._asked):
            poller = Poller(
                source,
                client,
                self._deliver_snapshots,
                market_of,
                self.catalogs.get(source.exchange),
                alarm=self._alarm(source.exchange),
            )
            self.pollers.append(poller)
        for poller in self.pollers:
            self._spawn(f"{poller.source.exchange} poller", _poll_forever(poller))

    def _deliver_snapshots(self, snapshots: list[MarketSnapshot]) -> None:
        assert self.on_snapshot is not None
        for snapshot in snapshots:
            try:
                self.on_snapshot(snapshot)
            except Exception:  # a consumer bug must not stop the poller
                log.exception("snapshot sink failed on %s %s", snapshot.exchange, snapshot.symbol)

    async def _refresh_catalogs(
        self, exchanges: set[str] | None = None, *, within: float | None = None
    ) -> set[str]:
        """Fetch the catalogs of ``exchanges`` (default: every enabled one), each source
        given ``within`` seconds; returns the exchanges a source of which failed."""
        assert self._client is not None
        enabled = set(self.exchanges) if exchanges is None else set(self.exchanges) & exchanges
        sources = tuple(s for s in self.catalog_sources if s.exchange in enabled)
        if not sources:
            return set()
        errors = await self.catalogs.refresh(self._client, sources, within=within)
        if errors:
            # One line for all sources: per-exchange reachability is the connections' to report.
            log.warning(
                "instrument catalogs: %d of %d REST sources failed, keeping the cached/bundled "
                "contracts for those exchanges (first: %s)",
                len(errors),
                len(sources),
                next(iter(errors.values())),
            )
        return {source.exchange for source in sources if source.url in errors}

    def _unsized(self) -> set[tuple[str, str]]:
        """``(exchange, symbol)`` of every contract a feed has dropped for an unknown size."""
        return {(s.exchange, symbol) for s in self._stats for symbol in s.unsized_symbols}

    async def _refresh_forever(self) -> None:
        """Every catalog each ``catalog_refresh_s``; an exchange's early when its feeds drop a
        symbol unsized that they had not dropped at the last fetch (at most once each
        ``catalog_early_s``): a coin listed since then is sized from its next liquidation on,
        not an hour later. A symbol the new answer lacks too waits for the regular fetch."""
        loop = asyncio.get_running_loop()
        refreshed = loop.time()
        early: dict[str, float] = {}  # exchange -> when its catalog was last fetched early
        known = self._unsized()
        while True:
            await asyncio.sleep(min(self.catalog_check_s, self.catalog_refresh_s))
            now = loop.time()
            try:
                if now - refreshed >= self.catalog_refresh_s:
                    refreshed, known = now, self._unsized()
                    await self._refresh_catalogs()
                    continue
                new = self._unsized() - known
                due = {
                    exchange
                    for exchange, _ in new
                    if now - early.get(exchange, -math.inf) >= self.catalog_early_s
                }
                if not due:
                    continue
                known |= {found for found in new if found[0] in due}
                early.update(dict.fromkeys(due, now))
                log.info(
                    "instrument catalogs: fetching %s again early for %s, dropped unsized",
                    ", ".join(sorted(due)),
                    ", ".join(sorted(symbol for exchange, symbol in new if exchange in due)),
                )
                failed = await self._refresh_catalogs(due)
                # A failed fetch learnt nothing: its symbols may ask again after catalog_early_s.
                known -= {found for found in new if found[0] in failed}
            except Exception:  # never let a refresh bug end refreshing
                log.exception("instrument catalog refresh failed")


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


class _Watch:
    """Connection ups and downs into the ledger; a reconnect that closes a gap repairs it."""

    def __init__(self, ingest: LiveIngest) -> None:
        self.ingest = ingest

    def up(self, connection: str, exchange: str, at_ms: int) -> None:
        gap = self.ingest.ledger.up(connection, exchange, at_ms)
        if gap is not None:
            self.ingest.gap_closed(gap)

    def frame(self, connection: str, at_ms: int) -> None:
        self.ingest.ledger.frame(connection, at_ms)

    def down(self, connection: str, exchange: str, at_ms: int, reason: str) -> None:
        self.ingest.ledger.down(connection, exchange, at_ms, reason)

    def stop(self, connection: str, at_ms: int) -> None:
        self.ingest.ledger.stop(connection, at_ms)


def sources_to_poll(
    sources: Sequence[PollSource], exchanges: Sequence[str] | None
) -> list[PollSource]:
    """The open-interest sources to run: those of ``exchanges``, or all of them when none were
    named. Open interest and marks are market data of their own, not a by-product of a
    liquidation feed: Hyperliquid has no public feed (its liquidations come from the position
    sampler) and holds some of the largest open interest, which the heatmap and the cascade
    engine's size term read."""
    if exchanges is None:
        return list(sources)
    named = set(exchanges)
    return [source for source in sources if source.exchange in named]


async def _poll_forever(poller: Poller) -> None:
    """``poller.run`` that survives a parser bug: log it and try again next interval."""
    while True:
        try:
            await poller.run()
        except Exception:
            log.exception("%s poller crashed; restarting", poller.source.exchange)
            await asyncio.sleep(poller.source.interval)
