"""The dashboard shows the measured map beside the estimate, with its source and coverage,
where the server samples the market's venue (a fake one here), and nothing where it does not."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest
from playwright.async_api import Page, expect

from purpleflea.server.measured import PositionSettings
from tests.dashboard.harness import seed_heatmap
from tests.dashboard.test_dashboard import open_live
from tests.fakes.hyperliquid import FakeHyperliquid, HeldPosition
from tests.server.conftest import make_config, running_server

MARK = 91_240.0
pytestmark = pytest.mark.asyncio(loop_scope="session")


async def test_the_measured_map_is_drawn_beside_the_estimate_with_its_coverage(
    tmp_path: Path, page: Page
) -> None:
    long_, short = "0x" + "1" * 40, "0x" + "2" * 40
    async with FakeHyperliquid(
        positions={
            long_: [HeldPosition("BTC", 2.0, MARK, 84_000.0, 10)],
            short: [HeldPosition("BTC", -1.0, MARK, 97_000.0, 10)],
        },
        markets={"BTC": (MARK, 10.0)},
    ) as fake:
        settings = PositionSettings(coins=("BTC",), info_url=fake.info_url, ws_url=fake.ws_url)
        async with running_server(make_config(tmp_path, positions=settings)) as tracker:
            seed_heatmap(tracker, "BTC-PERP", MARK, 4e9)
            deadline = asyncio.get_running_loop().time() + 30
            while not fake.subscribed("BTC"):
                assert asyncio.get_running_loop().time() < deadline, "never subscribed"
                await asyncio.sleep(0.05)
            await fake.trade("BTC", long_, short)
            headers = {"X-API-Key": tracker.key}
            async with httpx.AsyncClient(base_url=tracker.url, headers=headers) as http:
                estimate = (await http.get("/v1/heatmap/BTC-PERP")).json()
                bounds = {
                    "source": "measured",
                    "low": estimate["prices"][0],
                    "high": estimate["prices"][-1] + estimate["bucket_size"],
                    "bucket": estimate["bucket_size"],
                }
                measured: dict[str, object] = {}
                while measured.get("positions") != 2:
                    assert asyncio.get_running_loop().time() < deadline, "never measured"
                    await asyncio.sleep(0.1)
                    answer = await http.get("/v1/heatmap/BTC-PERP", params=bounds)
                    measured = answer.json() if answer.status_code == 200 else {}

            await open_live(page, tracker)
            beside = page.locator("#heatmap-measured")
            await expect(beside).to_be_visible()
            chart = beside.locator(".heatmap-chart")
            await expect(chart).to_be_visible()
            assert await chart.locator(".hm-long").count() == 1
            assert await chart.locator(".hm-short").count() == 1
            await expect(beside.locator(".hm-caption")).to_contain_text(
                "source: measured, 2 sampled accounts, coverage 15.0% of open interest"
            )
            await expect(page.locator("#heatmap .hm-caption")).to_contain_text("source: estimated")
            await page.fill("#heatmap-market", "ETH-PERP")  # not sampled: nothing beside
            await page.click("#heatmap-form button")
            await expect(beside).to_be_hidden()
