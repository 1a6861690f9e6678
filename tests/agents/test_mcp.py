"""The MCP agent tools, driven by the MCP SDK's own client against a real running server.

The server is fed a falling BTC market liquidating longs faster and faster (a cascade) and a few
ETH short liquidations; every tool's structured answer is checked against those events.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from mcp import Client, StdioServerParameters
from mcp_types import CallToolResult

from purpleflea.client import LiquidationClient
from purpleflea.clock import utc_iso
from purpleflea.mcp.answers import NO_KEY
from purpleflea.mcp.markets import largest_events
from purpleflea.mcp.server import build_server
from purpleflea.model import VenueLiquidation
from tests.ports import refused_url
from tests.server.conftest import Running, make_config, running_server, venue_event


def _burst(start: int) -> list[VenueLiquidation]:
    # One quiet liquidation first: the market's yardstick, against which the burst that
    # follows is far above its normal pace.
    quiet = [venue_event(size_usd=1_000.0, price=60_010.0, ts=start - 30_000)]
    longs = [
        venue_event(
            size_usd=20_000.0 * (1 + i // 20) + i,
            price=60_000.0 - 5 * i,
            ts=start + 400 * i,
        )
        for i in range(200)
    ]
    shorts = [
        venue_event(
            market="ETH-PERP",
            side="short",
            size_usd=5_000.0 + 100 * i,
            price=3_000.0 + i,
            exchange="bybit",
            ts=start + 1_000 * i,
        )
        for i in range(10)
    ]
    return quiet + longs + shorts


@dataclass(frozen=True)
class Burst:
    """The events ``fed`` serves, dated from the clock when the test runs."""

    now: int
    start: int  # the burst starts ten minutes before ``now``
    events: list[VenueLiquidation]


def _data(answer: CallToolResult) -> dict[str, Any]:
    assert not answer.is_error, answer.content
    assert answer.structured_content is not None
    return answer.structured_content


def _text(answer: CallToolResult) -> str:
    first = answer.content[0]
    assert first.type == "text"
    return first.text


def _stdio(live: Running) -> StdioServerParameters:
    """``purpleflea mcp``, as an MCP host launches it."""
    return StdioServerParameters(
        command=sys.executable,
        args=["-m", "purpleflea.cli", "mcp", "--url", live.url, "--api-key", live.key],
    )


async def test_every_tool_over_stdio_answers_from_the_served_events(
    fed: Running, burst: Burst
) -> None:
    events = burst.events
    btc = [e for e in events if e.market == "BTC-PERP"]
    async with Client(_stdio(fed), read_timeout_seconds=30) as client:
        names = {tool.name for tool in (await client.list_tools()).tools}
        assert names == {
            "recent_liquidations",
            "cascades",
            "heatmap_clusters",
            "market_stats",
            "market_summary",
        }

        recent = _data(
            await client.call_tool(
                "recent_liquidations",
                {"markets": ["btc-perp"], "side": "long", "min_usd": 60_000, "limit": 5},
            )
        )
        assert recent["count"] == 5
        expected = sorted((e for e in btc if e.size_usd >= 60_000), key=lambda e: -e.ts)[:5]
        assert [e["id"] for e in recent["events"]] == [e.id for e in expected]
        origin = recent["provenance"]
        assert (origin["basis"], origin["coverage"]) == ("measured", {"snapshot": ["binance_usdm"]})
        assert origin["price"] == {"fill": ["binance_usdm"]}
        assert origin["freshness_s"] == pytest.approx(
            (origin["as_of_ms"] - expected[0].ts) / 1000, abs=0.1
        )

        cascades = _data(await client.call_tool("cascades", {"markets": ["BTC-PERP"]}))
        found = cascades["active"] + cascades["past"]
        assert found, "a 200-event long burst must make a cascade"
        # 'past' as in the REST API; 'recent', its older MCP name, still means the same.
        for name in ("past", "recent"):
            only = _data(await client.call_tool("cascades", {"status": name}))
            assert only["past"] == cascades["past"]
            assert set(only) == {"past", "truncated", "provenance"}
        assert {(c["market"], c["side"]) for c in found} == {("BTC-PERP", "long")}
        assert cascades["provenance"]["basis"] == "modelled"
        assert cascades["provenance"]["venues"] == ["binance_usdm"]

        heatmap = _data(await client.call_tool("heatmap_clusters", {"market": "NOPE-PERP"}))
        reason = heatmap.pop("reason")  # the server's: which it is (a typo, no snapshot yet)
        assert reason.startswith("no heatmap for 'NOPE-PERP': the tracker has seen no ")
        assert heatmap == {"market": "NOPE-PERP", "available": False, "clusters": []}

        stats = _data(await client.call_tool("market_stats", {"market": "BTC-PERP"}))
        assert stats["long"]["count"] == len(btc)
        assert stats["long"]["usd"] == pytest.approx(sum(e.size_usd for e in btc))
        assert stats["short"] == {"usd": 0.0, "count": 0, "est_usd": 0.0, "est_count": 0}
        # Measured totals, with the estimate beside them and where they come from.
        origin = stats["provenance"]
        assert origin["basis"] == "measured"
        assert origin["coverage"] == {"snapshot": ["binance_usdm"]}
        newest = max(e.ts for e in btc if e.ts is not None)
        assert origin["freshness_s"] == pytest.approx((origin["as_of_ms"] - newest) / 1000, abs=0.1)
        assert origin["estimate"]["basis"] == "modelled"
        assert origin["estimate"]["est_usd"] == pytest.approx(stats["est_total_usd"])
        assert stats["est_total_usd"] >= stats["total_usd"]
        assert stats["largest"]["id"] == max(btc, key=lambda e: e.size_usd).id
        assert stats["dominant_side"] == "long"

        summary_answer = await client.call_tool("market_summary", {"window_minutes": 30})
        summary = _data(summary_answer)
        assert summary["count"] == len(events)
        assert summary["total_usd"] == pytest.approx(sum(e.size_usd for e in events))
        assert summary["top_markets"][0]["market"] == "BTC-PERP"
        top3 = sorted(events, key=lambda e: -(e.size_usd or 0))[:3]
        assert [e["id"] for e in summary["biggest"]] == [e.id for e in top3]
        assert "longs dominate" in _text(summary_answer)
        assert summary["provenance"]["coverage"] == {
            "complete": ["bybit"],
            "snapshot": ["binance_usdm"],
        }
        assert "Provenance: measured, 2 venue(s)" in _text(summary_answer)


async def test_tool_texts_are_concise_and_carry_the_facts(fed: Running) -> None:
    async with Client(build_server(LiquidationClient(fed.key, fed.url))) as client:
        answer = await client.call_tool("market_stats", {"market": "eth-perp"})
        stats = _data(answer)
        assert stats["short"]["count"] == 10
        assert stats["long"]["count"] == 0
        text = _text(answer)
        assert text.startswith("ETH-PERP, 60 min up to ")
        assert "shorts dominate" in text
        assert "$54.5K" in text
        recent = await client.call_tool("recent_liquidations", {"exchanges": ["bybit"]})
        assert _data(recent)["count"] == 10
        assert _text(recent).splitlines()[1].split(" UTC ")[1].startswith("ETH-PERP short $5.9K")


async def test_an_empty_window_says_so_and_invents_nothing(fed: Running, burst: Burst) -> None:
    async with Client(build_server(LiquidationClient(fed.key, fed.url))) as client:
        an_hour_earlier = burst.start - 2 * 3_600_000
        stats_answer = await client.call_tool(
            "market_stats",
            {"market": "BTC-PERP", "window_minutes": 60, "end_ms": an_hour_earlier},
        )
        stats = _data(stats_answer)
        assert stats["count"] == 0
        assert stats["largest"] is None
        summary = await client.call_tool(
            "market_summary", {"market": "SOL-PERP", "window_minutes": 5}
        )
        assert "no liquidations" in _text(summary)
        assert _data(summary)["biggest"] == []
        # The estimate said "$0 in ~0 liquidations": it says there were none.
        for answer in (stats_answer, summary):
            assert _text(answer).endswith(
                "Estimated with what throttled (snapshot) feeds hid: none either (modelled)."
            )
            assert "~0" not in _text(answer)


async def test_a_long_window_is_said_in_days_and_hours(fed: Running) -> None:
    # "All markets, last 525600 min": a figure for the reader to work out.
    async with Client(build_server(LiquidationClient(fed.key, fed.url))) as client:
        year = await client.call_tool("market_summary", {"window_minutes": "365d"})
        assert _text(year).startswith("All markets, last 365 d (to ")
        day = await client.call_tool("market_stats", {"market": "ETH-PERP", "window_minutes": 1440})
        assert _text(day).startswith("ETH-PERP, 24 h up to ")
        hour = await client.call_tool("market_summary", {"window_minutes": 90})
        assert _text(hour).startswith("All markets, last 90 min (to ")


async def test_an_unreachable_server_says_where_this_mcp_server_is_told_its_url() -> None:
    # "set PURPLEFLEA_URL": the MCP server reads it, but from its host's env for it, not from
    # the shell of the person reading the error (docs/agents.md).
    with refused_url() as dead:
        async with Client(build_server(LiquidationClient("pf_x", dead))) as client:
            answer = await client.call_tool("cascades", {})
    assert answer.is_error
    assert f"cannot reach the Purple Flea server: no Purple Flea server answers at {dead}" in (
        _text(answer)
    )
    assert _text(answer).endswith(
        "start one with `purpleflea serve`; if it runs elsewhere, whoever configured this MCP "
        "server must pass --url URL to `purpleflea mcp` or set PURPLEFLEA_URL in the MCP host's "
        "env for it (a variable set in their shell does not reach it)"
    )


async def test_bad_arguments_and_a_bad_key_are_tool_errors(fed: Running) -> None:
    async with Client(build_server(LiquidationClient("pf_wrong", fed.url))) as client:
        answer = await client.call_tool("cascades", {})
        assert answer.is_error
        assert "refused" in _text(answer)
    async with Client(build_server(LiquidationClient(fed.key, fed.url))) as client:
        answer = await client.call_tool("recent_liquidations", {"side": "up"})
        assert answer.is_error
        answer = await client.call_tool("recent_liquidations", {"limit": 1000})
        assert answer.is_error
        # An argument the tool does not take was dropped: "market" (for "markets") answered
        # every market's events as if no filter were given.
        answer = await client.call_tool("recent_liquidations", {"market": "BTC-PERP"})
        assert answer.is_error
        assert "market" in _text(answer)
        assert "not permitted" in _text(answer)
        # The server's refusal reads as every tool's does: its message and code, not raw JSON.
        answer = await client.call_tool("heatmap_clusters", {"market": "BTCUSDT"})
        assert answer.is_error
        assert _text(answer).endswith(
            "Purple Flea server refused: market 'BTCUSDT' is not a market name: markets are "
            "BASE-PERP for perpetuals (BTC-PERP, not BTCUSDT or BTC) and BASE-YYYYMMDD for dated "
            "futures (BTC-20250926); market_summary without a market names the most "
            "liquidated markets, recent_liquidations the markets of the latest events "
            "(bad_request)"
        )  # not "GET /v1/markets lists them": an agent has no such request, only its tools
        listed = {tool.name: tool for tool in (await client.list_tools()).tools}
        assert all(tool.input_schema["additionalProperties"] is False for tool in listed.values())


async def test_the_largest_event_scan_is_exact_across_pages(fed: Running, burst: Burst) -> None:
    async with LiquidationClient(fed.key, fed.url) as client:
        best, truncated = await largest_events(
            client, markets=None, start=burst.start, end=burst.now + 60_000, count=4, page_size=7
        )
    assert not truncated
    expected = sorted(burst.events, key=lambda e: -(e.size_usd or 0))[:4]
    assert [e.id for e in best] == [e.id for e in expected]


async def test_aggregate_answers_add_the_modelled_estimate_of_what_a_throttled_feed_hid(
    tmp_path: Path, now: int
) -> None:
    # XRP: Bybit (complete) sends 3 liquidations a second; Binance (snapshot) shows one a
    # second, so it is estimated to have hidden some; the answer says so, as modelled.
    start = now - 5 * 60_000
    events = [
        venue_event(market="XRP-PERP", exchange=exchange, size_usd=1_000.0, price=2.0, ts=ts)
        for second in range(20)
        for exchange, ts in [("binance_usdm", start + 1_000 * second)]
        + [("bybit", start + 1_000 * second + 100 * k) for k in range(3)]
    ]
    async with running_server(make_config(tmp_path)) as live:
        await live.push(*events)
        async with Client(build_server(LiquidationClient(live.key, live.url))) as client:
            answer = await client.call_tool("market_stats", {"market": "XRP-PERP"})
            stats = _data(answer)
            recent = await client.call_tool("recent_liquidations", {"exchanges": ["bybit"]})
    assert (stats["count"], stats["total_usd"]) == (80, 80_000.0)
    assert stats["est_total_usd"] > stats["total_usd"]
    assert stats["est_count"] > stats["count"]
    estimate = stats["provenance"]["estimate"]
    assert estimate["estimated_for"] == ["binance_usdm"]
    assert estimate["calibration"] == "complete_venues"
    assert estimate["hidden_usd"] == pytest.approx(stats["est_total_usd"] - 80_000.0)
    assert stats["provenance"]["coverage"] == {"complete": ["bybit"], "snapshot": ["binance_usdm"]}
    assert "(modelled)" in _text(answer)
    # What each venue's price is: Bybit sends the position's bankruptcy price, not a fill.
    assert stats["provenance"]["price"] == {"bankruptcy": ["bybit"], "fill": ["binance_usdm"]}
    assert "prices not fills (bankruptcy: bybit)" in _text(answer)
    assert _data(recent)["provenance"]["price"] == {"bankruptcy": ["bybit"]}
    assert "at 2.00 (bankruptcy price, bybit, complete feed)" in _text(recent)


async def test_an_estimate_without_a_complete_venue_says_it_is_the_flat_prior(
    tmp_path: Path, now: int
) -> None:
    # One throttled venue alone, as an imported Binance recording is: nothing calibrates the
    # estimate, which is the flat prior (2 events per second shown: here exactly twice the
    # measure). It had said "calibrated on complete venues of the same market" (on the four
    # real Binance recordings: est $1.2M beside $605K measured, 14:30-15:30 of 2025-12-27).
    start = now - 5 * 60_000
    events = [
        venue_event(market="XRP-PERP", exchange="binance_usdm", size_usd=1_000.0, price=2.0, ts=ts)
        for ts in range(start, start + 20_000, 1_000)
    ]
    async with running_server(make_config(tmp_path)) as live:
        await live.push(*events)
        async with Client(build_server(LiquidationClient(live.key, live.url))) as client:
            answer = await client.call_tool("market_stats", {"market": "XRP-PERP"})
    stats = _data(answer)
    assert (stats["count"], stats["est_count"]) == (20, 40)
    assert stats["est_total_usd"] == pytest.approx(2 * stats["total_usd"])
    estimate = stats["provenance"]["estimate"]
    assert estimate["calibration"] == "prior_only"
    assert "no complete venue had events in the window" in estimate["method"]
    assert "calibrated on complete venues" not in estimate["method"]
    assert "(modelled: no complete venue to calibrate on, a flat 2x prior)" in _text(answer)


async def test_arguments_as_a_model_sends_them_are_read_and_bad_ones_said_in_a_line(
    fed: Running, burst: Burst
) -> None:
    # A model sends one market where a list is asked, "LONG" or "longs", "1h" for a window,
    # a date for end_ms: each was a pydantic report of several lines ending in a URL, and a
    # seconds-since-epoch end_ms was refused as a 'start' the model never sent.
    async with Client(build_server(LiquidationClient(fed.key, fed.url))) as client:
        listed = _data(
            await client.call_tool(
                "recent_liquidations",
                {"markets": "eth-perp", "exchanges": "bybit", "side": "SHORTS", "limit": "3"},
            )
        )
        assert listed["count"] == 3
        assert {e["market"] for e in listed["events"]} == {"ETH-PERP"}
        big = _data(
            await client.call_tool("recent_liquidations", {"min_usd": "$190k", "limit": 100})
        )
        assert big["filters"]["min_usd"] == 190_000
        assert big["count"] == sum(1 for e in burst.events if (e.size_usd or 0) >= 190_000) == 20
        since = _data(
            await client.call_tool("recent_liquidations", {"since_minutes": "1h", "limit": 100})
        )
        assert since["filters"]["since_minutes"] == 60
        assert since["count"] == 100
        one = _data(await client.call_tool("market_stats", {"market": ["eth-perp"]}))
        assert one["market"] == "ETH-PERP"
        assert one["short"]["count"] == 10
        cascades = _data(await client.call_tool("cascades", {"status": "Past"}))
        assert set(cascades) == {"past", "truncated", "provenance"}

        now = burst.now
        end = now + 60_000
        by_number = _data(
            await client.call_tool("market_stats", {"market": "BTC-PERP", "end_ms": end})
        )
        iso = time.strftime("%Y-%m-%dT%H:%M", time.gmtime(end / 1000))
        by_date = _data(
            await client.call_tool(
                "market_stats", {"market": "BTC-PERP", "end_ms": iso, "window_minutes": "1h"}
            )
        )
        assert by_date["window_minutes"] == 60
        assert by_date["count"] == by_number["count"] == 201

        seconds = await client.call_tool(
            "market_stats", {"market": "BTC-PERP", "end_ms": now // 1000}
        )
        assert seconds.is_error
        assert _text(seconds) == (
            f"market_stats: bad arguments: end_ms: end_ms {now // 1000} looks like seconds "
            f"since the epoch ({utc_iso(now // 1000 * 1000)}); times are milliseconds: "
            f"{now // 1000 * 1000} (got {now // 1000})"
        )
        wrong = await client.call_tool("recent_liquidations", {"side": "buy", "limt": 5})
        assert wrong.is_error
        assert _text(wrong) == (
            # An order side (as venues send it) says which side it means.
            "recent_liquidations: bad arguments: side: 'buy' is an order side; side is the "
            "liquidated position, not the liquidation order's side: an order that sells closes "
            "a long (send 'long'), one that buys closes a short ('short') (got 'buy'); limt: "
            "not permitted: recent_liquidations takes markets, exchanges, side, min_usd, "
            "since_minutes, limit, end_ms, cursor"
        )
        window = await client.call_tool("market_summary", {"window_minutes": "a while"})
        assert _text(window).startswith("market_summary: bad arguments: window_minutes: ")
        assert "'90m', '6h', '2d'" in _text(window)


async def test_heatmap_clusters_fails_over_as_every_tool_does(fed: Running) -> None:
    # It fetched the heatmap with its own HTTP client from the first server only: with that
    # one down it failed where the other tools moved to the next server.
    with refused_url() as dead:
        async with Client(build_server(LiquidationClient(fed.key, [dead, fed.url]))) as client:
            heatmap = _data(await client.call_tool("heatmap_clusters", {"market": "NOPE-PERP"}))
    assert heatmap.pop("reason").startswith("no heatmap for 'NOPE-PERP'")
    assert heatmap == {"market": "NOPE-PERP", "available": False, "clusters": []}


async def test_counts_in_the_texts_have_thousands_separators(tmp_path: Path, now: int) -> None:
    # "$113M liquidated in 65425 events" read as one number only to a careful eye.
    # From a minute's start: the flat prior estimates a minute's events as twice its busy
    # seconds, never below the count, so a burst's last few events alone in a minute (where
    # the clock put the start) were estimated as 1,006 (CI, 1 run in many).
    start = now - 10 * 60_000
    first = start - start % 60_000
    many = [
        venue_event(market="SOL-PERP", size_usd=1_000.0 + i, price=150.0, ts=first + 100 * i)
        for i in range(1_005)
    ]
    config = make_config(tmp_path, rate_burst=500.0, rate_per_s=500.0)
    async with running_server(config) as live:
        await live.push(*many)
        async with Client(build_server(LiquidationClient(live.key, live.url))) as client:
            stats = _text(await client.call_tool("market_stats", {"market": "SOL-PERP"}))
            summary = _text(await client.call_tool("market_summary", {"window_minutes": 30}))
    assert " in 1,005 liquidations; longs $1.51M (1,005)," in stats
    assert "~1,005 liquidations (modelled" in stats
    assert " liquidated in 1,005 events; " in summary


async def test_a_server_started_without_a_key_says_who_must_give_one_and_how(
    fed: Running, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The tool said "Purple Flea server refused: no API key: pass api_key=..." though no
    # request was made, naming a Python argument the agent's operator never sees.
    monkeypatch.delenv("PURPLEFLEA_API_KEY", raising=False)
    async with Client(build_server(LiquidationClient(None, fed.url))) as client:
        answer = await client.call_tool("recent_liquidations", {})
    assert answer.is_error
    assert _text(answer).endswith(NO_KEY)
    assert "--api-key KEY to `purpleflea mcp`" in NO_KEY
