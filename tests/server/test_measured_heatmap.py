"""``GET /v1/heatmap/{market}?source=measured`` over a server sampling a fake Hyperliquid,
through the SDK and the terminal view; the estimate stays the default and says so."""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

import purpleflea
from purpleflea.client import PurpleFleaError
from purpleflea.commands.heatmap import _heatmap, render
from purpleflea.mcp.heatmaps import HeatmapTools
from purpleflea.server.measured import PositionSettings
from tests.fakes.hyperliquid import FakeHyperliquid, HeldPosition
from tests.server.conftest import make_config, running_server
from tests.server.test_heatmap_api import _snapshots

MARK = 90_000.0


async def _until(condition: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


async def test_measured_heatmap_through_the_api_sdk_and_terminal(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    long_, short = "0x" + "1" * 40, "0x" + "2" * 40
    async with FakeHyperliquid(
        positions={
            long_: [HeldPosition("BTC", 2.0, MARK, 80_000.0, 10)],
            short: [HeldPosition("BTC", -1.0, MARK, 99_000.0, 10)],
        },
        markets={"BTC": (MARK, 10.0)},
    ) as fake:
        settings = PositionSettings(coins=("BTC",), info_url=fake.info_url, ws_url=fake.ws_url)
        async with running_server(make_config(tmp_path, positions=settings)) as live:
            for snapshot in _snapshots("BTC-PERP", MARK, 4e9):
                live.server.tracker.on_snapshot(snapshot)
            await _until(lambda: fake.subscribed("BTC"), "the trades subscription")
            await fake.trade("BTC", long_, short)
            await _until(lambda: len(fake.requests) >= 3, "both accounts and the marks polled")
            client = purpleflea.LiquidationClient(api_key=live.key, base_url=live.url)
            measured = None
            deadline = asyncio.get_running_loop().time() + 60
            while measured is None or measured.positions < 2:
                assert asyncio.get_running_loop().time() < deadline, "never measured"
                try:
                    measured = await client.heatmap("btc-perp", bucket=1_000, source="measured")
                except PurpleFleaError:
                    await asyncio.sleep(0.05)
            assert measured.source == "measured"
            by_price = dict(zip(measured.prices, measured.long_usd, strict=True))
            assert by_price[80_000] == pytest.approx(2 * MARK)
            assert dict(zip(measured.prices, measured.short_usd, strict=True))[99_000] == (
                pytest.approx(MARK)
            )
            assert measured.coverage == pytest.approx(3 * MARK / (2 * 10 * MARK))
            assert "coverage 15.0% of open interest" in render(measured)
            args = argparse.Namespace(
                api_key=live.key, market="btc-perp", low=None, high=None, bucket=1_000.0,
                source="measured", width=10,
            )  # fmt: skip
            assert await _heatmap(args, live.url, False) == 0
            shown = capsys.readouterr().out
            assert "BTC-PERP  mark 90,000.00" in shown
            assert "measured: 2 positions of 2 accounts" in shown

            estimated = await client.heatmap("BTC-PERP")
            assert estimated.source == "estimated"
            async with httpx.AsyncClient(base_url=live.url) as http:
                headers = {"Authorization": f"Bearer {live.key}"}
                bad = await http.get("/v1/heatmap/BTC-PERP?source=guess", headers=headers)
                assert bad.status_code == 400
                assert "source must be 'estimated' or 'measured'" in bad.text
                unsampled = await http.get("/v1/heatmap/SOL-PERP?source=measured", headers=headers)
                assert unsampled.status_code == 404
                metrics = (await http.get("/v1/metrics", headers=headers)).text
                assert 'measured_heatmap_coverage{market="BTC-PERP"} 0.15' in metrics
                assert 'heatmap_estimate_vs_measured_spearman{market="BTC-PERP"}' in metrics
                # The sampler's schedule: the two accounts the trade named (capped at 100,000).
                assert 'position_sampler_accounts{exchange="hyperliquid"} 2' in metrics

            # The MCP heatmap tool: the measured map beside the estimate, source and coverage.
            answer = await HeatmapTools(client).heatmap_clusters("BTC-PERP")
            data = answer.structured_content
            assert data is not None
            assert data["source"] == "estimated"
            beside = data["measured"]
            assert beside["source"] == "measured"
            assert beside["coverage"] == pytest.approx(0.15)
            assert (beside["accounts"], beside["positions"]) == (2, 2)
            assert beside["largest"]["long"][0]["usd"] == pytest.approx(2 * MARK)
            assert beside["largest"]["short"][0]["usd"] == pytest.approx(MARK)
            bucket = beside["bucket_size"]
            assert beside["largest"]["long"][0]["price"] == 80_000 // bucket * bucket
            text = answer.content[0]
            assert text.type == "text"
            assert "coverage 15.0% of open interest, 2 accounts" in text.text
            unsampled_answer = await HeatmapTools(client).heatmap_clusters("ETH-PERP")
            assert (unsampled_answer.structured_content or {}).get("measured") is None
            await client.aclose()


async def test_measured_is_404_with_sampling_off(tmp_path: Path) -> None:
    async with running_server(make_config(tmp_path)) as live:
        client = purpleflea.LiquidationClient(api_key=live.key, base_url=live.url)
        with pytest.raises(PurpleFleaError) as off:
            await client.heatmap("BTC-PERP", source="measured")
        assert off.value.status == 404
        assert "position sampling is off" in str(off.value)
        await client.aclose()
