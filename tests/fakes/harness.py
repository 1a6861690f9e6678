"""Running real feed connections against fake exchanges, and what they should have produced.

:func:`recorded_frames` gathers the recorded frames of every connection (shared fixtures plus
tests/venues/frames/); :func:`expected_events` is the oracle: the exchange's own normalizer
applied to exactly the frames the fake delivered, unsized events dropped, first id wins.
:class:`Feeds` runs ``run_feed`` tasks and collects what reached the sink.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from purpleflea.ingest.backoff import Backoff
from purpleflea.ingest.catalog import Catalogs
from purpleflea.ingest.connection import run_feed
from purpleflea.ingest.connection_stats import ConnectionStats
from purpleflea.ingest.feed_spec import FeedSpec
from purpleflea.model import Instrument, VenueLiquidation
from purpleflea.venues import FrameError, PartialFrame
from tests.conftest import REPO, shared_dir

VENUE_FRAMES = REPO / "tests" / "venues" / "frames"

# Fixture name prefix -> connection that carries it (first match wins).
_FIXTURE_ROUTES = (
    ("binance_usdm_", "binance_usdm"),
    ("binance_coinm_", "binance_coinm"),
    ("bybit_liquidation_legacy_inverse", "bybit_inverse"),
    ("bybit_", "bybit_linear"),
    ("okx_", "okx"),
    ("bitmex_", "bitmex"),
    ("deribit_", "deribit"),
    ("dydx_", "dydx_v4"),
    ("krakenfutures_", "kraken_futures"),
    ("bitget_", "bitget"),
    ("gate_", "gate_usdt"),
    ("htx_coin", "htx_coin"),
    ("htx_", "htx_linear"),
)
# tests/venues/frames/<exchange>__<what>.json -> connection (by what the name says).
_VENUE_ROUTES: dict[str, Callable[[str], str]] = {
    "bybit": lambda what: "bybit_inverse" if "inverse" in what else "bybit_linear",
    "gate": lambda what: "gate_btc" if "btc" in what else "gate_usdt",
    "htx": lambda what: (
        "htx_futures" if "delivery" in what else "htx_coin" if "coin" in what else "htx_linear"
    ),
}


def _connection_of_fixture(stem: str) -> str | None:
    for prefix, connection in _FIXTURE_ROUTES:
        if stem.startswith(prefix):
            return connection
    return None  # hyperliquid: no public feed


def _connection_of_venue_frame(stem: str) -> str:
    exchange, _, what = stem.partition("__")
    route = _VENUE_ROUTES.get(exchange)
    return route(what) if route else exchange


def _frames_in(directory: Path) -> list[Path]:
    if not directory.is_dir():
        return []
    return sorted(p for p in directory.glob("*.json") if not p.name.endswith(".expected.json"))


def _read(path: Path) -> str | bytes:
    data = path.read_bytes()
    try:
        return data.decode().strip()
    except UnicodeDecodeError:
        return data  # a binary frame as sent (HTX gzip)


def recorded_frames() -> dict[str, list[str | bytes]]:
    """Raw recorded frames by connection name."""
    found: dict[str, list[str | bytes]] = {}
    for path in _frames_in(shared_dir() / "fixtures" / "exchanges"):
        connection = _connection_of_fixture(path.stem)
        if connection is not None:
            found.setdefault(connection, []).append(_read(path))
    for path in _frames_in(VENUE_FRAMES):
        if path.stem.startswith("hyperliquid"):
            continue  # no public feed to connect to
        connection = _connection_of_venue_frame(path.stem)
        found.setdefault(connection, []).append(_read(path))
    return found


def expected_fixture_events() -> list[dict[str, object]]:
    """The documented events of the shared fixtures (``*.expected.json``), sized ones only."""
    events = []
    for path in sorted((shared_dir() / "fixtures" / "exchanges").glob("*.expected.json")):
        for event in json.loads(path.read_text())["events"]:
            if event.get("quantity") is not None and event["exchange"] != "hyperliquid":
                events.append(event)
    return events


def catalogs_for_tests() -> Catalogs:
    """The bundled catalogs plus the instruments tests/venues/frames/ was written against."""
    catalogs = Catalogs()
    directory = VENUE_FRAMES / "instruments"
    for path in sorted(directory.glob("*.json")) if directory.is_dir() else []:
        exchange = path.stem
        live = catalogs.get(exchange)
        rows = dict(live)
        for symbol, row in json.loads(path.read_text()).items():
            rows[symbol] = Instrument(exchange=exchange, symbol=symbol, **row)
        live.replace(rows)
    return catalogs


def expected_events(spec: FeedSpec, frames: Iterable[str | bytes]) -> list[VenueLiquidation]:
    """What ``spec`` must deliver for ``frames``: sized, each id once, in order. A frame of
    the venue's contracts is learnt first, as the runner does (``spec.learn``: it changes
    ``spec``'s catalog; give the oracle a spec of its own catalogs)."""
    seen: set[str] = set()
    events = []
    for frame in frames:
        if spec.learn is not None:
            spec.learn(frame)
        try:
            found = spec.normalize(frame)
        except PartialFrame as partial:  # the connection delivers the readable rows
            found = partial.events
        except FrameError:
            continue
        for event in found:
            if event.quantity is None or event.size_usd is None or event.id in seen:
                continue
            seen.add(event.id)
            events.append(event)
    return events


def count_events(spec: FeedSpec, frames: Iterable[str | bytes]) -> int:
    """All events ``frames`` normalize to (sized, repeats included)."""
    total = 0
    for frame in frames:
        total += sum(1 for e in spec.normalize(frame) if e.quantity is not None)
    return total


def fast(spec: FeedSpec, **timing: float) -> FeedSpec:
    """``spec`` with test-speed keep-alive and watchdog (override with ``timing``)."""
    defaults: dict[str, Any] = {
        "keepalive_interval": 0.05,
        "silence_timeout": 2.0,
        "subscribe_pause": 0.0,
    }
    return replace(spec, **{**defaults, **timing})


def quick_backoff() -> Backoff:
    return Backoff(base=0.01, cap=0.05, healthy_after=0.1)


@dataclass
class Feeds:
    """Runs ``specs`` with the real connection code and records what reached the sink."""

    specs: list[FeedSpec]
    received: list[VenueLiquidation] = field(default_factory=list)
    stats: dict[str, ConnectionStats] = field(default_factory=dict)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def sink(self, event: VenueLiquidation, received_at: int) -> None:
        assert received_at > 0
        self.received.append(event)

    async def __aenter__(self) -> Feeds:
        for spec in self.specs:
            stats = ConnectionStats(spec.name)
            self.stats[spec.name] = stats
            job = run_feed(spec, self.sink, stats, backoff=quick_backoff(), open_timeout=2.0)
            self._tasks.append(asyncio.create_task(job))
        return self

    async def __aexit__(self, *exc: object) -> None:
        for task in self._tasks:
            task.cancel()
        results = await asyncio.gather(*self._tasks, return_exceptions=True)
        # run_feed must only ever end by cancellation: anything else is a crash.
        assert all(isinstance(r, asyncio.CancelledError) for r in results), results

    async def wait_for(self, condition: Callable[[], bool], timeout: float = 5.0) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                raise TimeoutError(f"condition not met in {timeout} s; stats: {self.snapshot()}")
            await asyncio.sleep(0.01)

    def snapshot(self) -> list[dict[str, object]]:
        return [s.snapshot() for s in self.stats.values()]


def gunzip_text(data: str | bytes) -> str:
    return gzip.decompress(data).decode() if isinstance(data, bytes) else data
