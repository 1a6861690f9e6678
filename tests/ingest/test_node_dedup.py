"""With a node of the venue configured, a liquidation is published once: the node's fill,
not also the sampler's vanished position (whichever of the two is seen first)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path

import pytest

from purpleflea.clock import now_ms
from purpleflea.ingest.backoff import Backoff
from purpleflea.ingest.node_dedup import NodeDedup
from purpleflea.ingest.node_follower import NodeFollower
from purpleflea.ingest.position_sampler import PositionSampler
from purpleflea.ingest.sampling_schedule import SamplerConfig
from purpleflea.model import VenueLiquidation
from purpleflea.venues import registry
from tests.fakes.hyperliquid import FakeHyperliquid, HeldPosition

[SAMPLING] = registry.position_sources()
MARK = 100_000.0
VICTIM, OTHER = "0x" + "a" * 40, "0x" + "b" * 40


async def _until(condition: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)


def _node_line(user: str, counterparty: str) -> str:
    """One ``node_fills`` line: the liquidation of ``user``'s 2 BTC long, both sides' fills."""
    fill = {
        "coin": "BTC", "px": "96000.0", "sz": "2.0", "time": 1_760_000_000_000,
        "hash": "0x" + "c" * 64, "tid": 42, "dir": "Close Long", "closedPnl": "0.0",
        "liquidation": {"liquidatedUser": user, "markPx": "95990.0", "method": "market"},
    }  # fmt: skip
    return json.dumps(
        {"events": [[user, {**fill, "side": "A"}], [counterparty, {**fill, "side": "B"}]]}
    )


@pytest.mark.parametrize("node_first", [True, False], ids=["node-first", "sampler-first"])
async def test_a_liquidation_told_by_the_node_and_the_sampler_is_published_once(
    tmp_path: Path, node_first: bool
) -> None:
    published: list[VenueLiquidation] = []
    skipped = [0]  # ms the dedup's clock is ahead of the wall clock: the hold passes at once
    dedup = NodeDedup(
        lambda event, received_at: published.append(event),
        hold_ms=1_500,
        clock=lambda: now_ms() + skipped[0],
    )
    node_dir = tmp_path / "node_fills" / "hourly" / "20251010"
    node_dir.mkdir(parents=True)
    hour = node_dir / "21"
    hour.write_text(_node_line(OTHER, VICTIM) + "\n")  # history: never published
    follower = NodeFollower(tmp_path / "node_fills", SAMPLING.parse_node_line, dedup.node)  # type: ignore[arg-type]
    follower.start_at_end()
    async with FakeHyperliquid(
        positions={VICTIM: [HeldPosition("BTC", 2.0, MARK, 96_000.0, 20, "isolated")]},
        markets={"BTC": (MARK, 100.0)},
    ) as fake:
        sampler = PositionSampler(
            SAMPLING,
            SamplerConfig(budget_per_minute=500, min_interval_ms=200, max_interval_ms=400),
            coins=("BTC",),
            info_url=fake.info_url,
            ws_url=fake.ws_url,
            backoff=Backoff(base=0.05, cap=0.2),
            sink=dedup.sampled,
        )
        sampler.watch_interval = 3600.0  # nobody watched: the vanished position tells
        task = asyncio.create_task(sampler.run())
        try:
            await _until(lambda: fake.subscribed("BTC"), "the trades subscription")
            await fake.trade("BTC", VICTIM, OTHER)
            await _until(lambda: sampler.stats.polls >= 2, "the first polls")
            if node_first:
                with hour.open("a") as node:
                    node.write(_node_line(VICTIM, OTHER) + "\n")
                assert follower.poll() == 1
            await fake.trade("BTC", OTHER, "0x" + "d" * 40, price=95_500.0)  # through its price
            fake.positions[VICTIM] = []
            await _until(lambda: sampler.stats.liquidations == 1, "the vanished position")
            if not node_first:
                with hour.open("a") as node:
                    node.write(_node_line(VICTIM, OTHER) + "\n")
                assert follower.poll() == 1
            skipped[0] = 2_000  # past the hold
            dedup.release()
        finally:
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
    [event] = published
    assert event.id == f"hyperliquid:0x{'c' * 64}:{VICTIM}:BTC:42"  # the node's fill
    assert (event.side, event.price, event.quantity) == ("long", 96_000.0, 2.0)
    assert dedup.duplicates == 1
    assert follower.stats.bad_lines == 0


def test_a_sampled_liquidation_the_node_did_not_tell_is_published_after_the_hold() -> None:
    now = [0]
    published: list[VenueLiquidation] = []
    dedup = NodeDedup(
        lambda event, received_at: published.append(event), hold_ms=60_000, clock=lambda: now[0]
    )
    event = VenueLiquidation(
        id="hyperliquid:sampled:x", exchange="hyperliquid", symbol="BTC", market="BTC-PERP",
        side="short", price=1.0, quantity=1.0, size_usd=1.0, ts=0, liquidated_user=OTHER,
    )  # fmt: skip
    dedup.sampled(event, 0)
    now[0] = 59_999
    assert dedup.release() == 0
    now[0] = 60_000
    assert dedup.release() == 1
    assert published == [event]
    assert dedup.duplicates == 0


def test_a_builder_dex_liquidation_does_not_hide_the_first_dex_s_of_the_same_name() -> None:
    # hyna:BTC, HyENA's HIP-3 BTC (margined in USDe), is BTC-PERP by name but a separate
    # market with its own book, funding and open interest (public HyENA and HIP-3 clients:
    # "These are SEPARATE markets"; a testnet perpDexLimits answer lists "hyna:BTC"). A node
    # telling the account's hyna:BTC long liquidated says nothing of its BTC long.
    now = [0]
    published: list[VenueLiquidation] = []
    dedup = NodeDedup(
        lambda event, received_at: published.append(event), hold_ms=60_000, clock=lambda: now[0]
    )
    [builder] = SAMPLING.parse_node_line(  # type: ignore[misc]
        _node_line(VICTIM, OTHER).replace('"coin": "BTC"', '"coin": "hyna:BTC"')
    )
    assert (builder.symbol, builder.market, builder.side) == ("hyna:BTC", "BTC-PERP", "long")
    dedup.node(builder, 0)
    sampled = VenueLiquidation(
        id="hyperliquid:sampled:y", exchange="hyperliquid", symbol="BTC", market="BTC-PERP",
        side="long", price=96_000.0, quantity=1.0, size_usd=96_000.0, ts=0,
        liquidated_user=VICTIM,
    )  # fmt: skip
    dedup.sampled(sampled, 0)
    now[0] = 60_000
    assert dedup.release() == 1
    assert published == [builder, sampled]
    assert dedup.duplicates == 0
