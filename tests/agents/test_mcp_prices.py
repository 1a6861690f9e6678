"""Every price a tool's text prints says when it is no fill: market_summary's biggest prints
read "at 656.32 (bybit, ...)" for a Bybit bankruptcy price, where recent_liquidations and
market_stats said "(bankruptcy price, bybit, ...)" of the same event."""

from __future__ import annotations

from pathlib import Path

from mcp import Client

from purpleflea.client import LiquidationClient
from purpleflea.mcp.server import build_server
from tests.server.conftest import make_config, running_server, venue_event


async def test_market_summary_prints_say_which_prices_are_not_fills(
    tmp_path: Path, now: int
) -> None:
    events = [
        venue_event(
            market="BNB-PERP", exchange="bybit", size_usd=850_000.0, price=656.32, ts=now - 60_000
        ),
        venue_event(
            market="BNB-PERP",
            exchange="binance_usdm",
            size_usd=500_000.0,
            price=659.1,
            ts=now - 50_000,
        ),
    ]
    async with running_server(make_config(tmp_path)) as live:
        await live.push(*events)
        async with Client(build_server(LiquidationClient(live.key, live.url))) as client:
            answer = await client.call_tool("market_summary", {"window_minutes": 10})
    assert not answer.is_error, answer.content
    first = answer.content[0]
    assert first.type == "text"
    assert "$850K long BNB-PERP at 656.32 (bankruptcy price, bybit, " in first.text
    assert "$500K long BNB-PERP at 659.10 (binance_usdm, " in first.text
