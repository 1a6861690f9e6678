"""What the dashboard's browser tests and screenshot script share: a served tracker whose
heatmap has data, Debian's chromium, and event bursts that look like real market moves."""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path

from playwright.async_api import Browser, Playwright

from purpleflea.clock import now_ms
from purpleflea.engine.heatmap import HeatmapConfig, HeatmapModel
from purpleflea.model import MarketSnapshot, VenueLiquidation
from tests.server.conftest import Running, make_config, running_server, venue_event

CHROMIUM = Path(os.environ.get("PURPLEFLEA_CHROMIUM", "/usr/bin/chromium"))
BROWSER_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
    "--disable-quic",
]
HEATMAP_PATH = "/v1/heatmap/{market}"

# Main-thread probes for a crash (page.evaluate it): every long task (> 50 ms, the Long Tasks
# API), every gap between animation frames, and the page's element count when it began.
FRAME_PROBE = """() => {
  window.probe = { longTasks: [], frames: [], elements: document.getElementsByTagName('*').length };
  new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) window.probe.longTasks.push(entry.duration);
  }).observe({ type: 'longtask' });
  let last = performance.now();
  const frame = (t) => {
    window.probe.frames.push(t - last);
    last = t;
    requestAnimationFrame(frame);
  };
  requestAnimationFrame(frame);
}"""


async def launch_chromium(playwright: Playwright) -> Browser:
    """Debian's chromium, driven by Playwright; a clear error (not a skip) when it is missing."""
    if not CHROMIUM.exists():
        raise RuntimeError(
            f"chromium not found at {CHROMIUM}: the dashboard tests drive a real browser. "
            "Install Debian's chromium (`apt-get install chromium`) or point "
            "PURPLEFLEA_CHROMIUM at a Chromium binary (do not run `playwright install`)."
        )
    return await playwright.chromium.launch(executable_path=str(CHROMIUM), args=BROWSER_ARGS)


@contextlib.asynccontextmanager
async def dashboard_server(data_dir: Path) -> AsyncIterator[Running]:
    """A real tracker on a loopback port (tests/server's harness) with a heatmap to show."""
    async with running_server(make_config(data_dir)) as running:
        yield running


# -- market data ---------------------------------------------------------------------------------


def seed_heatmap(
    running: Running, market: str, mark: float, oi_usd: float, *, banded: bool = False
) -> None:
    """Two days of hourly open-interest snapshots around ``mark`` (price wandering +/- 6 %,
    open interest growing), so positions sit at many liquidation prices and form clusters.

    ``banded``: the server's model replaced by one opening through the leverage tiers (the
    default before 2026-12-08), whose bands make four or more named clusters of this path;
    the served model's smooth real shape makes one a side."""
    if banded:
        feed = running.server.tracker.heatmap
        assert feed is not None
        feed.model = HeatmapModel(HeatmapConfig(opened=None, turnover_per_hour=0.1))
    start = now_ms() - 48 * 3_600_000
    for hour in range(49):
        price = mark * (1 + 0.06 * math.sin(hour / 7.0) * (1 - hour / 48))
        coins = oi_usd / mark * (0.6 + 0.4 * hour / 48)
        running.server.tracker.on_snapshot(
            MarketSnapshot(
                exchange="binance_usdm",
                symbol=market.replace("-PERP", "USDT"),
                market=market,
                ts=start + hour * 3_600_000,
                mark_price=price,
                open_interest=coins,
                open_interest_usd=coins * price,
            )
        )


def cascade_burst(
    market: str, side: str, *, price: float, events: int = 12, size_usd: float = 400_000.0
) -> list[VenueLiquidation]:
    """A quiet first liquidation (the market's yardstick) and then a dense burst of large
    same-side ones, each filled 0.15 % further against the side, over the last few seconds:
    what the cascade engine calls a cascade (a 90 s window far above the market's pace,
    liquidating through three or more price levels in turn)."""
    now = now_ms()
    step = -0.0015 if side == "long" else 0.0015
    burst = [venue_event(market=market, side=side, size_usd=1_000.0, price=price, ts=now - 20_000)]
    for i in range(events):
        price *= 1 + step
        burst.append(
            venue_event(
                market=market,
                side=side,
                size_usd=size_usd,
                price=round(price, 2),
                exchange=("bybit", "okx", "binance_usdm")[i % 3],
                ts=now - events * 1_000 + i * 1_000,
            )
        )
    return burst


# -- coverage ------------------------------------------------------------------------------------


async def paced_crash(running: Running, rate: int, seconds: int, ticks: int = 20) -> None:
    """A crash at a steady ``rate`` of liquidations a second for ``seconds``, over 40 markets
    and both sides, submitted ``ticks`` times a second on the wall clock, then stored."""
    markets = [f"M{i}-PERP" for i in range(40)]
    start = time.perf_counter()
    for tick in range(seconds * ticks):
        ts = now_ms()
        for i in range(rate // ticks):
            n = tick * (rate // ticks) + i
            running.server.tracker.submit(
                venue_event(market=markets[n % 40], side=("long", "short")[n % 2], ts=ts)
            )
        await asyncio.sleep(max(0.0, start + (tick + 1) / ticks - time.perf_counter()))
    await running.server.tracker.drain()


async def seed_coverage(running: Running) -> None:
    """A day of connection history through the node's ledger, as the live ingest records
    it: Binance USD-M (snapshot, busy symbols) up all day with one open gap (no REST
    history), Deribit with a 20 s gap at an hour's end repaired from its trade history, Bybit
    down for an hour."""
    from purpleflea.ingest.repair import settled
    from purpleflea.venues import registry
    from purpleflea.venues.venue import Absent

    coverage = running.server.coverage
    assert coverage is not None
    assert coverage.ledger is not None
    ledger = coverage.ledger
    now = now_ms()
    start = now - 23 * 3_600_000 - 1_800_000
    for connection, exchange in (
        ("binance_usdm", "binance_usdm"),
        ("deribit", "deribit"),
        ("bybit_linear", "bybit"),
    ):
        ledger.up(connection, exchange, start)
    for second in range(0, 3_000, 2):
        for symbol in ("BTCUSDT", "ETHUSDT", "SOLUSDT"):
            ledger.event("binance_usdm", symbol, now - 3_000_000 + second * 1_000)

    def outage(connection: str, exchange: str, at: int, seconds: int, reason: str) -> None:
        ledger.frame(connection, at - 1_000)  # its last frame (live feeds see pings too)
        ledger.down(connection, exchange, at, reason)
        gap = ledger.up(connection, exchange, at + seconds * 1_000)
        assert gap is not None
        source = registry.REPAIRS[exchange]
        if isinstance(source, Absent):
            ledger.settle(settled(gap, open_reason=f"no REST history: {source.reason}"))
        else:
            ledger.settle(settled(gap, events=3))

    outage("binance_usdm", "binance_usdm", now - 5 * 3_600_000, 240, "silent")
    # In an hour's last minute: its 2 px mark must still lead a tap to that hour, not the next.
    edge = now - 14 * 3_600_000
    edge += 3_600_000 - edge % 3_600_000
    outage("deribit", "deribit", edge - 30_000, 20, "closed")
    outage("bybit_linear", "bybit", now - 9 * 3_600_000, 3_600, "unreachable")
    await coverage.flush()
