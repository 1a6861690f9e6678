"""A window before anything was stored (the tracker was not recording then: an agent asking
about a famous crash of last year) holds no liquidation: it was answered "no liquidations in
the 60 min up to ...", which reads as a calm market."""

from __future__ import annotations

import pytest
from mcp import Client

from purpleflea.client import LiquidationClient
from purpleflea.mcp.server import build_server
from tests.agents.test_mcp import Burst, _data, _text
from tests.server.conftest import Running

HOUR_MS = 3_600_000


@pytest.mark.parametrize("tool", ["market_stats", "market_summary"])
async def test_a_window_before_any_stored_liquidation_says_so(
    fed: Running, burst: Burst, tool: str
) -> None:
    # The store's first event is 30 s before the burst: two hours earlier nothing was stored,
    # of any market. One minute ago nothing happened, with history before it: a calm window.
    before = {"market": "BTC-PERP", "end_ms": burst.start - 2 * HOUR_MS}
    calm = {"market": "BTC-PERP", "window_minutes": 1, "end_ms": "now"}
    async with Client(build_server(LiquidationClient(fed.key, fed.url))) as client:
        early = await client.call_tool(tool, before)
        quiet = await client.call_tool(tool, calm)
        whole = await client.call_tool("market_summary", {"end_ms": burst.start - 2 * HOUR_MS})
    for answer in (early, whole):
        data, text = _data(answer), _text(answer)
        assert data["count"] == 0
        assert data["history_starts_after_window"] is True
        assert "no liquidations: nothing of any market is stored before " in text
        assert "the tracker was not recording then" in text
    assert _data(quiet)["count"] == 0
    assert _data(quiet)["history_starts_after_window"] is False
    assert "not recording" not in _text(quiet)
    assert "no liquidations" in _text(quiet)


async def test_recent_liquidations_before_any_stored_one_says_so(
    fed: Running, burst: Burst
) -> None:
    async with Client(build_server(LiquidationClient(fed.key, fed.url))) as client:
        early = await client.call_tool(
            "recent_liquidations", {"end_ms": burst.start - 2 * HOUR_MS, "limit": 5}
        )
        big = await client.call_tool("recent_liquidations", {"min_usd": 1e12})
    data, text = _data(early), _text(early)
    assert data["count"] == 0
    assert data["history_starts_after_window"] is True
    assert text.startswith("No liquidations match these filters: nothing of any market is ")
    assert _data(big)["history_starts_after_window"] is False  # filtered out: nothing to add
    assert "not recording" not in _text(big)
