"""The heatmap over the API, the SDK and the terminal view, and its fuel for the engine."""

from __future__ import annotations

import math

import httpx
import pytest

import purpleflea
from purpleflea.client import PurpleFleaError
from purpleflea.commands.heatmap import render
from purpleflea.engine.heatmap_feed import HeatmapFeed
from purpleflea.model import MarketSnapshot, Side
from tests.server.conftest import T0, Running, venue_event


def _snapshots(market: str, mark: float, oi_usd: float) -> list[MarketSnapshot]:
    """Two days of hourly open interest growing while price wanders +/- 6 %."""
    snapshots = []
    for hour in range(49):
        price = mark * (1 + 0.06 * math.sin(hour / 7.0) * (1 - hour / 48))
        coins = oi_usd / mark * (0.6 + 0.4 * hour / 48)
        snapshots.append(
            MarketSnapshot(
                exchange="binance_usdm",
                symbol=market.replace("-PERP", "USDT"),
                market=market,
                ts=T0 + hour * 3_600_000,
                mark_price=price,
                open_interest=coins,
                open_interest_usd=coins * price,
            )
        )
    return snapshots


async def test_heatmap_route_sdk_and_terminal_view(live: Running) -> None:
    for snapshot in _snapshots("BTC-PERP", 91_000.0, 4e9):
        live.server.tracker.on_snapshot(snapshot)
    client = purpleflea.LiquidationClient(api_key=live.key, base_url=live.url)
    heatmap = await client.heatmap("btc-perp")
    assert heatmap.market == "BTC-PERP"
    assert len(heatmap.prices) == len(heatmap.long_usd) == len(heatmap.short_usd) > 10
    assert heatmap.clusters
    # Longs are liquidated below the mark, shorts above.
    below = sum(
        u for p, u in zip(heatmap.prices, heatmap.long_usd, strict=True) if p < heatmap.mark_price
    )
    assert below == pytest.approx(sum(heatmap.long_usd), rel=0.05)
    narrow = await client.heatmap("BTC-PERP", low=85_000, high=95_000, bucket=500)
    assert narrow.bucket_size == 500
    assert narrow.prices[0] >= 85_000 - 500
    text = render(heatmap, width=20)
    assert "<- mark" in text
    assert heatmap.clusters[0].label in text
    with pytest.raises(PurpleFleaError) as missing:
        await client.heatmap("NOPE-PERP")
    assert missing.value.status == 404
    # A market the tracker never saw was told "no heatmap for 'NOPE-PERP' yet", as if waiting
    # would help; one with liquidations but no snapshot yet is told so.
    assert str(missing.value) == (
        "no heatmap for 'NOPE-PERP': the tracker has seen no liquidation and no open-interest "
        "snapshot of it (a typo? 1 market has a heatmap: BTC-PERP; GET /v1/markets lists the "
        "markets seen)"
    )
    await live.push(venue_event(market="ETH-PERP", price=3_000.0))
    with pytest.raises(PurpleFleaError) as early:
        await client.heatmap("ETH-PERP")
    assert early.value.status == 404
    assert str(early.value) == (
        "no heatmap for 'ETH-PERP' yet: it has liquidations but no open-interest snapshot has "
        "arrived (the heatmap is built from them; live feeds send one within a minute)"
    )
    with pytest.raises(PurpleFleaError) as misnamed:
        await client.heatmap("BTCUSDT")
    assert misnamed.value.status == 400
    # One line for `purpleflea heatmap BTCUSDT`, which adds its own "purpleflea heatmap: ".
    assert str(misnamed.value).startswith("market 'BTCUSDT' is not a market name")
    async with httpx.AsyncClient(base_url=live.url) as http:
        assert (await http.get("/v1/heatmap/BTC-PERP")).status_code == 401
        response = await http.get(
            "/v1/heatmap/BTC-PERP", params={"bucket": "-5"}, headers={"X-API-Key": live.key}
        )
        assert response.status_code == 400
        # It said "must be a finite number >= 0", and 0 was then refused as not positive.
        assert response.json()["error"]["message"] == (
            "bucket must be a finite number above 0, got '-5'"
        )
        response = await http.get(
            "/v1/heatmap/BTC-PERP",
            params={"low": "95000", "high": "90000"},
            headers={"X-API-Key": live.key},
        )
        assert response.status_code == 400
    await client.aclose()


class _Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[str, Side, float]] = []
        self.open_interest: list[tuple[str, float, str]] = []

    def set_fuel(self, market: str, side: Side, ratio: float) -> None:
        self.calls.append((market, side, ratio))

    def set_open_interest(self, market: str, usd: float, instrument: str = "") -> None:
        self.open_interest.append((market, usd, instrument))


def test_snapshots_hand_the_engine_a_fuel_ratio_per_side() -> None:
    recorder = _Recorder()
    feed = HeatmapFeed(fuel=recorder)
    snapshots = _snapshots("ETH-PERP", 3_000.0, 1e9)
    for snapshot in snapshots:
        feed.on_snapshot(snapshot)
    assert len(recorder.calls) == 2 * len(snapshots)
    assert {side for _, side, _ in recorder.calls} == {"long", "short"}
    assert all(math.isfinite(ratio) and ratio >= 0 for _, _, ratio in recorder.calls)
    # The first snapshot is its own baseline: the ratio starts at 1.
    assert recorder.calls[0][2] == pytest.approx(1.0)
    # Each listing's open interest reaches the engine, named by exchange and symbol.
    assert recorder.open_interest == [
        ("ETH-PERP", s.open_interest_usd, "binance_usdm:ETHUSDT") for s in snapshots
    ]


def test_an_empty_view_is_one_line_not_a_column_of_zeros() -> None:
    # A market whose open interest is 0, or a --low/--high where no position is, drew 80 rows
    # of "$0 | price | $0" and no word of why.
    from purpleflea.engine.heatmap import HeatmapModel

    model = HeatmapModel()
    for market, oi in (("X-PERP", 0.0), ("Y-PERP", 1e6)):
        model.on_snapshot(
            MarketSnapshot(
                exchange="binance_usdm",
                symbol=market.replace("-PERP", "USDT"),
                market=market,
                ts=T0,
                mark_price=10.0,
                open_interest=oi / 10.0,
                open_interest_usd=oi,
            )
        )
    empty = render(model.heatmap("X-PERP"), width=10)
    assert empty.splitlines() == [
        "X-PERP  mark 10.00  (bucket 0.05; longs liquidated left, shorts right)",
        "no position's liquidation price lies between 8.00 and 12.00 (nothing at risk in this "
        "view: the market's open interest is 0, or widen it with --low/--high)",
    ]
    far = render(model.heatmap("Y-PERP", low=100, high=120, bucket=1), width=10)
    assert far.splitlines()[1].startswith("no position's liquidation price lies between 100.00")
    assert "|" in render(model.heatmap("Y-PERP"), width=10)
