"""A market no event ever named (a typo such as ETHH-PERP) is said to be one, where the tools
answered "no liquidations in the 60 min", which reads as a calm market: heatmap_clusters,
REST and the CLI tell a market the tracker never saw."""

from __future__ import annotations

import pytest
from mcp import Client

from purpleflea.client import LiquidationClient
from purpleflea.mcp.answers import never_seen, unseen_text
from purpleflea.mcp.server import build_server
from tests.agents.test_mcp import Burst, _data, _text
from tests.server.conftest import Running


@pytest.mark.parametrize("tool", ["market_stats", "market_summary"])
async def test_a_market_never_seen_is_said_to_be_one(fed: Running, burst: Burst, tool: str) -> None:
    async with Client(build_server(LiquidationClient(fed.key, fed.url))) as client:
        answer = await client.call_tool(tool, {"market": "ethh-perp"})
        quiet = await client.call_tool(
            tool, {"market": "BTC-PERP", "window_minutes": 60, "end_ms": burst.start - 7_200_000}
        )
    data, text = _data(answer), _text(answer)
    assert data["count"] == 0
    assert data["market_seen"] is False
    assert "No liquidation of ETHH-PERP is stored at all" in text
    assert "a typo?" in text
    # A market with events, none in this window: quiet, not unknown.
    assert _data(quiet)["market_seen"] is True
    assert "stored at all" not in _text(quiet)
    assert "no liquidations" in _text(quiet)


@pytest.mark.parametrize("tool", ["recent_liquidations", "cascades"])
async def test_an_empty_list_names_the_markets_never_seen(fed: Running, tool: str) -> None:
    async with Client(build_server(LiquidationClient(fed.key, fed.url))) as client:
        answer = await client.call_tool(tool, {"markets": ["ETHH-PERP", "ETH-PERP"]})
        typo_only = await client.call_tool(tool, {"markets": "ethh-perp"})
        big = {"markets": "ETH-PERP", "min_usd": 1e12}
        quiet = await client.call_tool("recent_liquidations", big)
    if tool == "recent_liquidations":  # ETH-PERP's events are listed: nothing to explain
        assert "unseen_markets" not in _data(answer)
    data, text = _data(typo_only), _text(typo_only)
    assert data["unseen_markets"] == ["ETHH-PERP"]
    assert "No liquidation of ETHH-PERP is stored at all" in text
    assert "a typo?" in text
    assert _data(quiet)["count"] == 0  # a real market with nothing this big: no typo
    assert "unseen_markets" not in _data(quiet)


def test_every_tool_says_a_market_was_never_seen_in_one_sentence() -> None:
    # market_stats and market_summary said "no liquidation of X is stored at all, in any window
    # (a typo? ...)", recent_liquidations and cascades "No liquidation of X is stored at all,
    # in any window (a typo? ...)": two copies of one sentence, free to drift apart.
    assert unseen_text(["ETHH-PERP"]) in never_seen("ETHH-PERP")
    assert never_seen("ETHH-PERP").startswith("no liquidations")
