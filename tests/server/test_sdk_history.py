"""The SDK's history calls: one filter vocabulary, and the blocking client's history_all."""

from __future__ import annotations

import asyncio
import inspect

import pytest

import purpleflea
from purpleflea.clock import now_ms
from purpleflea.model import Liquidation
from tests.server.conftest import Running, venue_event


async def _seed(live: Running) -> None:
    await live.push(
        *(venue_event(market="BTC-PERP", ts=1_760_000_000_000 + n) for n in range(5)),
        *(venue_event(market="ETH-PERP", ts=1_760_000_001_000 + n) for n in range(3)),
    )


async def test_history_takes_markets_or_the_rest_spelling_market(live: Running) -> None:
    await _seed(live)
    async with purpleflea.LiquidationClient(api_key=live.key, base_url=live.url) as client:
        documented = await client.history(markets=["ETH-PERP"])
        rest_style = await client.history(market="ETH-PERP")
        assert [e.id for e in rest_style.events] == [e.id for e in documented.events]
        assert {e.market for e in documented.events} == {"ETH-PERP"}
        assert len(documented.events) == 3
        every = [e async for e in client.history_all(market="BTC-PERP", limit=2)]
        assert [e.market for e in every] == ["BTC-PERP"] * 5
        buckets = await client.aggregate(interval="1d", market="ETH-PERP", start=0)
        assert sum(b.count for b in buckets) == 3
        with pytest.raises(TypeError, match="markets= or market="):
            await client.history(markets=["BTC-PERP"], market="ETH-PERP")


async def test_history_by_time_pages_the_latest_events_first_whatever_their_storage(
    live: Running,
) -> None:
    """order="ts": the newest by event time first (ties: the last stored first), each page
    after the one before by its '<ts>_<seq>' cursor; the default order stays the last stored
    first."""
    base = 1_760_000_000_000
    # Stored live first, then an older recording imported after them, then two more live
    # ones at the same millisecond.
    await live.push(
        *(venue_event(market="BTC-PERP", ts=base + 60_000 + n * 1_000) for n in range(4)),
        *(venue_event(market="ETH-PERP", ts=base + n * 1_000) for n in range(4)),
        *(venue_event(market="SOL-PERP", ts=base + 70_000) for _ in range(2)),
    )
    async with purpleflea.LiquidationClient(api_key=live.key, base_url=live.url) as client:
        stored = (await client.history(limit=100)).events
        assert [e.seq for e in stored] == list(range(10, 0, -1))  # the default, unchanged
        first = await client.history(order="ts", limit=3)
        assert isinstance(first.next_cursor, str)
        by_time = [e async for e in client.history_all(order="ts", limit=3)]
        assert by_time[:3] == first.events
        assert by_time == sorted(stored, key=lambda e: (-e.ts, -e.seq))
        assert [e.seq for e in by_time[:2]] == [10, 9]  # the tie at base + 70 s
        assert [e.market for e in by_time[2:6]] == ["BTC-PERP"] * 4
        after = await client.history(order="ts", cursor=first.next_cursor, limit=2)
        assert after.events == by_time[3:5]
        for wrong in (first.next_cursor.replace("_", ":"), "12", "-5_3"):
            with pytest.raises(purpleflea.BadRequestError, match="cursor"):
                await client.history(order="ts", cursor=wrong)
        with pytest.raises(purpleflea.BadRequestError, match="cursor"):
            await client.history(cursor=first.next_cursor)  # a time cursor, storage order
        with pytest.raises(purpleflea.BadRequestError, match="order"):
            await client.history(order="size")  # type: ignore[arg-type]


def _sync_history_all(url: str, key: str) -> tuple[list[Liquidation], list[Liquidation]]:
    client = purpleflea.SyncLiquidationClient(api_key=key, base_url=url)
    try:
        everything = list(client.history_all(limit=3))  # three pages
        eth = list(client.history_all(market="ETH-PERP"))
        return everything, eth
    finally:
        client.close()


async def test_the_sync_client_offers_history_all(live: Running) -> None:
    await _seed(live)
    # The blocking client runs its own loop: off this test's loop, which serves the API.
    everything, eth = await asyncio.to_thread(_sync_history_all, live.url, live.key)
    assert [e.seq for e in everything] == list(range(8, 0, -1))  # newest first, every page
    assert [e.seq for e in eth] == [8, 7, 6]
    assert all(isinstance(e, Liquidation) for e in everything)


def test_sync_history_all_has_a_typed_signature() -> None:
    parameters = inspect.signature(purpleflea.SyncLiquidationClient.history_all).parameters
    assert all(p.kind is not inspect.Parameter.VAR_KEYWORD for p in parameters.values())
    assert {"markets", "market", "exchanges", "sides", "min_usd", "start", "end", "limit"} <= set(
        parameters
    )


def _sync_big_totals(url: str, key: str, start: int, end: int) -> list[purpleflea.Bucket]:
    with purpleflea.SyncLiquidationClient(api_key=key, base_url=url) as client:
        return client.aggregate(
            interval="1h", group_by="side", min_usd=100_000, start=start, end=end
        )


async def test_aggregate_takes_min_usd_as_the_rest_route_does(live: Running) -> None:
    # The REST aggregate counts only events of min_usd or more; the SDK could not ask it, so
    # "how much was liquidated in prints of $100k and up" had no SDK answer but summing history.
    hour = 1_760_000_400_000 // 3_600_000 * 3_600_000
    sizes = [50_000.0, 99_999.99, 100_000.0, 250_000.0]
    await live.push(
        *(
            venue_event(size_usd=usd, side="long", ts=hour + 1_000 * i)
            for i, usd in enumerate(sizes)
        ),
        venue_event(size_usd=400_000.0, side="short", ts=hour + 9_000),
    )
    window = {"start": hour, "end": hour + 3_600_000}
    async with purpleflea.LiquidationClient(api_key=live.key, base_url=live.url) as client:
        buckets = await client.aggregate(interval="1h", group_by="side", min_usd=100_000, **window)
    # By hand: longs 100,000 + 250,000 (two events; 99,999.99 is below), shorts 400,000.
    found = {b.group: (b.count, b.size_usd) for b in buckets}
    assert found == {"long": (2, 350_000.0), "short": (1, 400_000.0)}
    blocking = await asyncio.to_thread(_sync_big_totals, live.url, live.key, **window)
    assert {b.group: (b.count, b.size_usd) for b in blocking} == found


async def test_aggregate_can_ask_for_the_measure_alone(live: Running) -> None:
    """``estimate=False`` reaches the server's ``estimate=false`` (the open hour's estimate is
    the costly part of a recent window); the SDK had no way to ask for it."""
    now = now_ms()
    await live.push(*(venue_event(size_usd=1_000.0, ts=now - 1_000 * k) for k in range(5)))
    window = {"interval": "1h", "start": now // 3_600_000 * 3_600_000 - 3_600_000}
    async with purpleflea.LiquidationClient(api_key=live.key, base_url=live.url) as client:
        [estimated] = await client.aggregate(**window)
        [alone] = await client.aggregate(**window, estimate=False)
    assert estimated.count == alone.count == 5
    assert estimated.est_calibration != "none"
    assert (alone.est_count, alone.est_calibration) == (5, "none")

    def blocking() -> list[purpleflea.Bucket]:
        with purpleflea.SyncLiquidationClient(api_key=live.key, base_url=live.url) as sync:
            return sync.aggregate(**window, estimate=False)

    assert await asyncio.to_thread(blocking) == [alone]
