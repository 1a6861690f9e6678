"""Screenshots of the web dashboard (feed, cascade alert, heatmap) for docs/dashboard.md.

Run (one command, from the repository root)::

    .venv/bin/python bench/dashboard_screenshots.py [--out docs/img]

Starts a real tracker on a loopback port (the tests' harness: no exchange, events pushed
through the tracker), fills an hour of history and two heatmaps, opens the page in Debian's
chromium (``/usr/bin/chromium``) and, while live events stream in, saves
``dashboard_feed.png``, ``dashboard_alert.png`` (during a pushed ETH-PERP long cascade),
``dashboard_heatmap.png`` (a bar tapped: its numbers in the line under the chart) and
``dashboard_coverage.png`` (a day of seeded connection history: coverage badges, uptime strips,
a repaired and an open gap; an hour with a gap picked), then on a 390 px touch phone
``dashboard_phone.png`` (the whole page, a feed row tapped: its detail line above the rows).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # the tests' server harness is reused, not copied

from playwright.async_api import async_playwright  # noqa: E402
from tests.dashboard.harness import (  # noqa: E402
    cascade_burst,
    dashboard_server,
    launch_chromium,
    now_ms,
    seed_coverage,
    seed_heatmap,
)
from tests.server.conftest import Running, venue_event  # noqa: E402

#: Market, price, relative activity: a plausible slice of the perpetuals universe.
MARKETS = [
    ("BTC-PERP", 91_240.0, 10),
    ("ETH-PERP", 3_052.0, 8),
    ("SOL-PERP", 142.35, 5),
    ("XRP-PERP", 2.184, 3),
    ("DOGE-PERP", 0.1621, 3),
    ("SUI-PERP", 3.412, 2),
    ("BNB-PERP", 612.4, 2),
    ("AVAX-PERP", 38.91, 1),
    ("LINK-PERP", 17.62, 1),
    ("PEPE-PERP", 0.00001912, 1),
]
EXCHANGES = ["binance_usdm", "bybit", "okx", "bitget", "hyperliquid", "gate", "deribit"]


# Focus (as a tap or Tab does) the widest bar of a heatmap chart.
_PICK_WIDEST = """chart => {
  const bars = [...chart.querySelectorAll(".hm-long, .hm-short")];
  bars.sort((a, b) => b.getAttribute("width") - a.getAttribute("width"))[0].focus();
}"""


def random_event(rng: random.Random, ts: int, *, quiet: str = "") -> object:
    """One liquidation of a random market (never ``quiet``), sized like real ones."""
    choices = [m for m in MARKETS if m[0] != quiet]
    market, price, _ = rng.choices(choices, weights=[m[2] for m in choices])[0]
    size = min(5_000_000.0, round(rng.paretovariate(1.3) * 4_000, -2))
    return venue_event(
        market=market,
        side=rng.choice(("long", "short")),
        size_usd=size,
        price=price * (1 + rng.gauss(0, 0.001)),
        exchange=rng.choice(EXCHANGES),
        ts=ts,
    )


async def fill_history(running: Running, rng: random.Random) -> None:
    start = now_ms() - 50 * 60_000
    events = [random_event(rng, start + i * 6_000) for i in range(500)]
    await running.push(*events)  # type: ignore[arg-type]


async def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    rng = random.Random(7)
    with tempfile.TemporaryDirectory() as data:
        async with dashboard_server(Path(data)) as running, async_playwright() as pw:
            seed_heatmap(running, "BTC-PERP", 91_240.0, 4e9)
            seed_heatmap(running, "ETH-PERP", 3_052.0, 1.5e9)
            await fill_history(running, rng)
            await seed_coverage(running)
            browser = await launch_chromium(pw)
            page = await browser.new_page(viewport={"width": 1440, "height": 900})
            await page.add_init_script(
                f"localStorage.setItem('purpleflea.api_key', {running.key!r})"
            )
            await page.goto(running.url + "/")
            await page.wait_for_selector(".status-live")
            await page.wait_for_selector(".heatmap-chart")
            for _ in range(40):
                # ETH-PERP stays quiet here: its cascade below is pushed with timestamps of
                # the last seconds, which must not be older than what ETH-PERP already saw.
                event = random_event(rng, now_ms(), quiet="ETH-PERP")
                await running.push(event)  # type: ignore[arg-type]
                await asyncio.sleep(0.05)
            await page.wait_for_timeout(300)
            await page.screenshot(path=out / "dashboard_feed.png")
            await page.wait_for_selector(".cov-row")
            # An hour with a gap, picked: its uptime and the gap's outcome in the detail line.
            deribit = page.locator('.cov-row[data-exchange="deribit"]')
            await deribit.locator('.cov-hour[aria-label*="gap"]').click()
            await page.locator(".coverage-panel").screenshot(path=out / "dashboard_coverage.png")
            # Sized for a market with $1.5B of open interest and an hour of history: the
            # tests' default burst is sized for a market the engine has not seen before.
            await running.push(
                *cascade_burst("ETH-PERP", "long", price=3_052.0, events=24, size_usd=2_000_000.0)
            )
            await page.wait_for_selector(".alert")
            await page.wait_for_timeout(300)
            await page.evaluate("window.scrollTo(0, 0)")  # the banner is at the top
            await page.screenshot(
                path=out / "dashboard_alert.png",
                clip={"x": 0, "y": 0, "width": 1440, "height": 520},
            )
            # The widest bar, picked: its range and notional in the line under the chart.
            await page.locator("#heatmap .heatmap-chart").evaluate(_PICK_WIDEST)
            await page.locator(".heatmap-panel").screenshot(path=out / "dashboard_heatmap.png")
            await page.close()

            phone = await browser.new_page(
                viewport={"width": 390, "height": 844}, has_touch=True, is_mobile=True
            )
            await phone.add_init_script(
                f"localStorage.setItem('purpleflea.api_key', {running.key!r})"
            )
            await phone.goto(running.url + "/")
            await phone.wait_for_selector(".status-live")
            await phone.wait_for_selector(".heatmap-chart")
            await phone.wait_for_selector(".cov-row")
            await phone.locator("#feed .row").nth(2).locator(".market").tap()
            await phone.evaluate("window.scrollTo(0, 0)")
            await phone.screenshot(path=out / "dashboard_phone.png", full_page=True)
            await browser.close()
    for name in ("feed", "alert", "heatmap", "coverage", "phone"):
        print(out / f"dashboard_{name}.png")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "img")
    asyncio.run(main(parser.parse_args().out))
