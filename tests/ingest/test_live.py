"""LiveIngest end to end on loopback: catalogs, feeds, pollers, stats, unsized drops, stop."""

from __future__ import annotations

import asyncio
import json
import time

import httpx

from purpleflea.ingest import catalog, pollers
from purpleflea.ingest.backoff import Backoff
from purpleflea.ingest.live import LiveIngest, market_of, sources_to_poll
from purpleflea.model import MarketSnapshot, VenueLiquidation
from purpleflea.venues.bybit import catalog as bybit_catalog
from purpleflea.venues.bybit import open_interest as bybit_oi
from purpleflea.venues.okx import catalog as okx_catalog
from tests.fakes.exchanges import FakeExchange, dialect_for
from tests.fakes.rest import FakeRest

T0 = 1_700_000_000_000

BYBIT_INSTRUMENTS = {
    "retCode": 0,
    "result": {
        "category": "linear",
        "list": [
            {"symbol": "BTCUSDT", "contractType": "LinearPerpetual", "status": "Trading"},
            {"symbol": "NEWCOINUSDT", "contractType": "LinearPerpetual", "status": "Trading"},
            {"symbol": "OLDUSDT", "contractType": "LinearPerpetual", "status": "Closed"},
        ],
    },
}
OKX_INSTRUMENTS = {
    "code": "0",
    "data": [
        {"instId": "NEWCOIN-USDT-SWAP", "ctVal": "10", "ctMult": "1", "ctType": "linear"},
        {"instId": "BTC-USDT-SWAP", "ctVal": "0.01", "ctMult": "1", "ctType": "linear"},
    ],
}
BYBIT_INVERSE = {
    "retCode": 0,
    "result": {
        "category": "inverse",
        "list": [{"symbol": "BTCUSD", "contractType": "InversePerpetual", "status": "Trading"}],
    },
}
BYBIT_TICKERS = {
    "retCode": 0,
    "result": {
        "list": [
            {
                "symbol": "BTCUSDT",
                "markPrice": "50000",
                "openInterest": "200",
                "singleOpenInterest": "100",
            }
        ]
    },
}


def okx_frame(inst_id: str, i: int) -> str:
    detail = {"side": "sell", "posSide": "net", "bkPx": "2.5", "sz": "4", "ts": str(T0 + i)}
    item = {"instId": inst_id, "instType": "SWAP", "details": [detail]}
    return json.dumps(
        {"arg": {"channel": "liquidation-orders", "instType": "SWAP"}, "data": [item]}
    )


def bybit_frame(symbol: str, i: int) -> str:
    row = {"T": T0 + i, "s": symbol, "S": "Buy", "v": "3", "p": "1.5"}
    return json.dumps({"topic": f"allLiquidation.{symbol}", "type": "snapshot", "ts": T0 + i,
                       "data": [row]})  # fmt: skip


async def test_live_ingest_fetches_catalogs_runs_feeds_and_pollers() -> None:
    okx_frames = [okx_frame("NEWCOIN-USDT-SWAP", 1), okx_frame("UNLISTED-USDT-SWAP", 2)]
    rest_routes = {
        "/bybit/linear": json.dumps(BYBIT_INSTRUMENTS).encode(),
        "/bybit/inverse": json.dumps(BYBIT_INVERSE).encode(),
        "/okx/instruments": json.dumps(OKX_INSTRUMENTS).encode(),
        "/bybit/tickers": json.dumps(BYBIT_TICKERS).encode(),
    }
    events: list[VenueLiquidation] = []
    snapshots: list[MarketSnapshot] = []
    async with (
        FakeRest(rest_routes) as rest,
        FakeExchange(dialect_for("okx"), okx_frames) as okx,
        FakeExchange(dialect_for("bybit_linear"), [bybit_frame("NEWCOINUSDT", 3)]) as linear,
        FakeExchange(dialect_for("bybit_inverse")) as inverse,
    ):
        ingest = LiveIngest(
            lambda event, received_at: events.append(event),
            snapshots.append,
            exchanges=["okx", "bybit"],
            urls={"okx": okx.url, "bybit_linear": linear.url, "bybit_inverse": inverse.url},
            catalog_sources=(
                catalog.Source("bybit", f"{rest.base}/bybit/linear", bybit_catalog.parse),
                catalog.Source("bybit", f"{rest.base}/bybit/inverse", bybit_catalog.parse),
                catalog.Source("okx", f"{rest.base}/okx/instruments", okx_catalog.parse),
            ),
            poll_sources=(
                pollers.PollSource("bybit", (f"{rest.base}/bybit/tickers",), bybit_oi.parse),
            ),
            backoff=lambda: Backoff(base=0.01, cap=0.05),
        )
        await ingest.start()
        try:
            deadline = time.monotonic() + 5
            while (len(events) < 2 or not snapshots) and time.monotonic() < deadline:
                await asyncio.sleep(0.01)
            await okx.wait_drained()
            # Drained means sent, not read: wait until the feed has handled both OKX frames.
            stats = {s["name"]: s for s in ingest.stats()}
            while (
                stats["okx"]["events"] + stats["okx"]["unsized"] < len(okx_frames)
                and time.monotonic() < deadline
            ):
                await asyncio.sleep(0.01)
                stats = {s["name"]: s for s in ingest.stats()}
        finally:
            tasks = list(ingest._tasks)
            await ingest.stop()
    # The fetched catalog drove the subscriptions: the new symbol, not the closed one.
    assert linear.sessions[0].topics == ["allLiquidation.BTCUSDT", "allLiquidation.NEWCOINUSDT"]
    assert inverse.sessions[0].topics == ["allLiquidation.BTCUSD"]
    # ...and the contract sizes: NEWCOIN-USDT-SWAP is 10 coins per contract.
    by_symbol = {e.symbol: e for e in events}
    assert set(by_symbol) == {"NEWCOIN-USDT-SWAP", "NEWCOINUSDT"}
    assert by_symbol["NEWCOIN-USDT-SWAP"].quantity == 40.0
    assert by_symbol["NEWCOIN-USDT-SWAP"].side == "long"
    assert by_symbol["NEWCOINUSDT"].side == "long"  # Bybit Buy = long liquidated
    # The unlisted contract was dropped, not published with a guessed size.
    assert stats["okx"]["unsized"] == 1
    assert stats["okx"]["events"] == 1
    assert set(stats) == {"okx", "bybit_linear", "bybit_inverse"}
    assert all(s["state"] == "connected" and s["connects"] == 1 for s in stats.values())
    assert snapshots[0] == MarketSnapshot(
        exchange="bybit",
        symbol="BTCUSDT",
        market="BTC-PERP",
        ts=snapshots[0].ts,
        mark_price=50000.0,
        open_interest=100.0,
        open_interest_usd=5_000_000.0,
    )
    assert ingest.pollers[0].stats.polls >= 1
    assert tasks
    assert all(task.done() for task in tasks)
    assert not ingest._tasks


def test_market_of_names_poller_symbols() -> None:
    assert market_of("binance_usdm", "1000PEPEUSDT") == "PEPE-PERP"
    assert market_of("binance_usdm", "BTCUSDT_250627") is None
    assert market_of("bybit", "BTCUSD") == "BTC-PERP"
    assert market_of("okx", "ETH-USDT-SWAP") == "ETH-PERP"
    assert market_of("bitmex", "XBTUSD") == "BTC-PERP"
    assert market_of("dydx_v4", "SOL-USD") == "SOL-PERP"
    assert market_of("gate", "DOGE_USDT") == "DOGE-PERP"
    assert market_of("hyperliquid", "kPEPE") == "PEPE-PERP"
    assert market_of("nowhere", "BTC") is None


def test_every_exchange_with_open_interest_is_polled_not_only_those_with_a_feed() -> None:
    # Hyperliquid has no public liquidation feed, and live ingest polled only exchanges with
    # one: its open interest (among the largest) never reached the heatmap or the engine.
    default = LiveIngest(lambda event, received_at: None, lambda snapshot: None)
    assert "hyperliquid" not in default.exchanges
    polled = {source.exchange for source in sources_to_poll(pollers.POLL_SOURCES, None)}
    assert "hyperliquid" in polled
    assert polled == {source.exchange for source in pollers.POLL_SOURCES}
    # Exchanges named by the caller are polled alone.
    named = sources_to_poll(pollers.POLL_SOURCES, ["okx"])
    assert named
    assert {source.exchange for source in named} == {"okx"}


async def test_live_ingest_with_default_exchanges_starts_the_hyperliquid_poller() -> None:
    ingest = LiveIngest(lambda event, received_at: None, lambda snapshot: None, catalog_wait_s=0.0)
    async with httpx.AsyncClient() as client:
        ingest._start_pollers(client)
        try:
            assert "hyperliquid" in {poller.source.exchange for poller in ingest.pollers}
        finally:
            for task in ingest._tasks:
                task.cancel()
            await asyncio.gather(*ingest._tasks, return_exceptions=True)
