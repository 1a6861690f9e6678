"""The MCP tools' figures against sums worked out by hand from the events a real server was
fed: totals, sides, the largest print, and how old the newest event is (provenance).

Events are stored in seq order, which is the order they arrived, not their time order: a late
feed, an import of older files after newer ones. An answer about "the newest event" must read
event time, not arrival."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from mcp import Client
from mcp_types import CallToolResult

from purpleflea.client import HistoryPage, LiquidationClient
from purpleflea.mcp.server import build_server
from tests.server.conftest import make_config, running_server, venue_event

MINUTE = 60_000
HOUR = 60 * MINUTE


def _data(answer: CallToolResult) -> dict[str, Any]:
    assert not answer.is_error, answer.content
    assert answer.structured_content is not None
    return answer.structured_content


async def test_freshness_is_the_age_of_the_newest_event_by_time_not_the_last_stored(
    tmp_path: Path, now: int
) -> None:
    # Arrival order: the newest event (two minutes old) first, then ones from five hours,
    # three hours and two days ago (an older file imported after it). The newest data in the
    # window is two minutes old; the last stored event is two days old.
    newest = venue_event(size_usd=10_000.0, exchange="bybit", ts=now - 2 * MINUTE)
    older = [
        venue_event(size_usd=20_000.0, side="short", exchange="bybit", ts=now - 5 * HOUR),
        venue_event(size_usd=30_000.0, exchange="bybit", ts=now - 3 * HOUR),
        venue_event(size_usd=40_000.0, exchange="bybit", ts=now - 50 * HOUR),
    ]
    async with running_server(make_config(tmp_path)) as live:
        await live.push(newest, *older)
        async with Client(build_server(LiquidationClient(live.key, live.url))) as client:
            stats = _data(
                await client.call_tool(
                    "market_stats", {"market": "BTC-PERP", "window_minutes": "6h"}
                )
            )
            summary = _data(await client.call_tool("market_summary", {"window_minutes": "6h"}))
            days = _data(await client.call_tool("market_summary", {"window_minutes": "3d"}))
    # By hand: longs 10k + 30k, shorts 20k, the largest the 30k print.
    assert (stats["long"]["usd"], stats["short"]["usd"], stats["count"]) == (40_000.0, 20_000.0, 3)
    assert stats["largest"]["size_usd"] == 30_000.0
    assert days["count"] == 4
    for answer in (stats, summary, days):
        found = answer["provenance"]
        age_s = (found["as_of_ms"] - newest.ts) / 1000
        # Two minutes (plus this test's run); it was 3 h (10,800 s), the last stored event's.
        assert found["freshness_s"] == round(age_s, 1), found


async def test_recent_liquidations_are_the_newest_by_time_not_the_last_stored(
    tmp_path: Path, now: int
) -> None:
    # Live events of the last minutes, then a day-old recording stored after them (an import
    # into the folder, a late feed): "the newest" were the recording's, last stored, and the
    # live ones were cut by the limit.
    live_events = [
        venue_event(size_usd=1_000.0 * (i + 1), exchange="bybit", ts=now - (10 - i) * MINUTE)
        for i in range(5)
    ]
    recording = [
        venue_event(size_usd=500.0, exchange="bybit", ts=now - 24 * HOUR + i * MINUTE)
        for i in range(5)
    ]
    async with running_server(make_config(tmp_path)) as live:
        await live.push(*live_events, *recording)
        async with Client(build_server(LiquidationClient(live.key, live.url))) as client:
            newest = _data(await client.call_tool("recent_liquidations", {"limit": 3}))
            every = _data(await client.call_tool("recent_liquidations", {"limit": 10}))
            day = _data(
                await client.call_tool("recent_liquidations", {"limit": 10, "since_minutes": 30})
            )
    by_time = sorted(live_events, key=lambda e: -(e.ts or 0))
    assert [e["id"] for e in newest["events"]] == [e.id for e in by_time[:3]]
    assert newest["truncated"] is True
    assert [e["id"] for e in every["events"]] == [
        e.id for e in sorted([*live_events, *recording], key=lambda e: -(e.ts or 0))
    ]
    assert every["truncated"] is False
    assert [e["id"] for e in day["events"]] == [e.id for e in by_time]
    assert day["truncated"] is False


async def test_recent_liquidations_on_a_busy_minute_read_one_page_of_the_asked_size(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, now: int
) -> None:
    # 1,500 events in the last minute, stored out of time order: the tool read windows back
    # in time (4 requests: a 1-event probe and three 1,000-event pages, to answer 20); the
    # history route now pages by event time (order=ts) and it asks for the 20 it answers.
    busy = [
        venue_event(
            size_usd=100.0 + i, exchange="bybit", ts=now - 60_000 + (i * 7_919) % 1_500 * 40
        )
        for i in range(1_500)
    ]
    asked: list[dict[str, Any]] = []
    history = LiquidationClient.history

    async def counted(self: LiquidationClient, **options: Any) -> HistoryPage:
        asked.append(options)
        return await history(self, **options)

    monkeypatch.setattr(LiquidationClient, "history", counted)
    async with running_server(make_config(tmp_path)) as live:
        await live.push(*busy)
        async with Client(build_server(LiquidationClient(live.key, live.url))) as client:
            newest = _data(await client.call_tool("recent_liquidations", {"limit": 20}))
    by_time = sorted(busy, key=lambda e: -(e.ts or 0))
    assert [e["id"] for e in newest["events"]] == [e.id for e in by_time[:20]]
    assert newest["truncated"] is True
    assert [a.get("limit") for a in asked] == [20], asked
