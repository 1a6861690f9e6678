"""A tool that answers at most ``limit`` items says when more matched: an agent reading "20
liquidations, $65.7K in total" took the page's total for the filters' total."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mcp import Client
from mcp_types import CallToolResult

from purpleflea.client import LiquidationClient
from purpleflea.mcp.server import build_server
from purpleflea.model import VenueLiquidation
from tests.server.conftest import make_config, running_server, venue_event


def _burst(market: str, price: float, now: int) -> list[VenueLiquidation]:
    """One quiet liquidation, then 200 longs faster and larger from ten minutes before
    ``now``: a cascade on ``market``."""
    start = now - 10 * 60_000
    quiet = [venue_event(market=market, size_usd=1_000.0, price=price, ts=start - 30_000)]
    return quiet + [
        venue_event(
            market=market,
            size_usd=20_000.0 * (1 + i // 20) + i,
            price=price * (1 - 0.0001 * i),
            ts=start + 400 * i,
        )
        for i in range(200)
    ]


def _answer(answer: CallToolResult) -> tuple[str, dict[str, Any]]:
    assert not answer.is_error, answer.content
    assert answer.structured_content is not None
    first = answer.content[0]
    assert first.type == "text"
    return first.text, answer.structured_content


async def test_recent_liquidations_and_cascades_say_when_more_matched(
    tmp_path: Path, now: int
) -> None:
    # Three cascades in two lists (active, past): one list holds at least two.
    events = [
        *_burst("BTC-PERP", 60_000.0, now),
        *_burst("ETH-PERP", 3_000.0, now),
        *_burst("SOL-PERP", 150.0, now),
    ]
    config = make_config(tmp_path, rate_burst=500.0, rate_per_s=500.0)
    async with running_server(config) as live:
        await live.push(*events)
        async with Client(build_server(LiquidationClient(live.key, live.url))) as client:
            cut = _answer(await client.call_tool("recent_liquidations", {"limit": 5}))
            whole = _answer(
                await client.call_tool(
                    "recent_liquidations", {"markets": "ETH-PERP", "min_usd": 200_000}
                )
            )
            cascades = _answer(await client.call_tool("cascades", {"limit": 1}))
            every = _answer(await client.call_tool("cascades", {"limit": 3}))

    text, data = cut
    assert (data["count"], data["truncated"]) == (5, True)
    assert text.startswith("The 5 newest of more matching liquidations (limit 5), ")
    assert "More match: cursor " in text
    assert "or raise limit (up to 100)" in text

    text, data = whole
    expected = sum(1 for e in events if e.market == "ETH-PERP" and (e.size_usd or 0) >= 200_000)
    assert (data["count"], data["truncated"]) == (expected, False)
    assert text.startswith(f"{expected} liquidations, ")

    # Each burst's cascade, in whichever list it is by now.
    text, data = every
    found = data["active"] + data["past"]
    assert {c["market"] for c in found} == {"BTC-PERP", "ETH-PERP", "SOL-PERP"}
    assert data["truncated"] == {"active": False, "past": False}
    text, data = cascades
    lists = [name for name in ("active", "past") if len(every[1][name]) >= 2]
    assert lists
    for name in lists:  # a list of two or more, cut to one, says so
        assert len(data[name]) == 1
        assert data["truncated"][name] is True
        ranked = "strongest of " if name == "active" else "newest "  # active: by score
        assert f"The 1 {ranked}" in text
        assert f" {name} cascade(s) (" in text
