"""A window that has not happened yet (an ``end_ms`` in the future: a wrong year, a local time
sent as UTC) holds no liquidation: it was answered "no liquidations in the 60 min up to ...",
which reads as a calm market."""

from __future__ import annotations

import pytest
from mcp import Client

from purpleflea.client import LiquidationClient
from purpleflea.clock import utc_iso
from purpleflea.mcp import arguments
from purpleflea.mcp.server import build_server
from tests.agents.test_mcp import _text
from tests.server.conftest import Running

HOUR_MS = 3_600_000


@pytest.mark.parametrize("ahead_ms", [2 * HOUR_MS, 200 * 24 * HOUR_MS])
def test_an_end_ms_in_the_future_is_refused_saying_what_time_it_is(now: int, ahead_ms: int) -> None:
    later = now + ahead_ms
    for sent in (later, utc_iso(later)[:16]):
        with pytest.raises(ValueError, match=r"Z, in the future \(now is 20") as refused:
            arguments.end_ms(sent)
        assert "omit end_ms for now" in str(refused.value)


def test_an_end_ms_a_little_ahead_is_taken_as_clocks_differ(now: int) -> None:
    assert arguments.end_ms(now + 60_000) == now + 60_000


@pytest.mark.parametrize("tool", ["market_stats", "market_summary", "recent_liquidations"])
async def test_a_future_window_is_a_tool_error_not_a_calm_market(
    fed: Running, now: int, tool: str
) -> None:
    args = {"end_ms": utc_iso(now + 6 * HOUR_MS)[:16]}
    if tool == "market_stats":
        args["market"] = "BTC-PERP"
    async with Client(build_server(LiquidationClient(fed.key, fed.url))) as client:
        answer = await client.call_tool(tool, args)
    assert answer.is_error
    assert "end_ms" in _text(answer)
    assert "in the future" in _text(answer)
