"""The real position sampler against the simulated market's Hyperliquid share: what it
measures is the simulator's true positions of the accounts it sampled, and a sampled account's
liquidation comes out of the stream once."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from purpleflea.engine.measured_map import measured_map
from purpleflea.ingest.connection import Backoff
from purpleflea.ingest.position_sampler import PositionSampler
from purpleflea.ingest.sampling_schedule import SamplerConfig
from purpleflea.positions import Position
from purpleflea.sim import SimConfig, SimStep, Simulator
from purpleflea.store.accounts import open_account_store
from purpleflea.venues import registry
from purpleflea.venues.hyperliquid.simulated import SHARE, SimulatedHyperliquid, address_of

[SAMPLING] = registry.position_sources()
MARKET = "BTC-PERP"


async def _until(condition: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)


def _sampler(venue: SimulatedHyperliquid, tmp_path: Path) -> PositionSampler:
    return PositionSampler(
        SAMPLING,
        SamplerConfig(budget_per_minute=400, min_interval_ms=60_000, max_interval_ms=60_000),
        coins=("BTC",),
        info_url=venue.info_url,
        ws_url=venue.ws_url,
        accounts=open_account_store(f"sqlite://{tmp_path / 'history.sqlite'}"),
        contexts_interval=5.0,
        backoff=Backoff(base=0.05, cap=0.2),
    )


def _true_sampled(sim: Simulator, polled: set[str]) -> list[Position]:
    """The simulator's true BTC positions of the polled addresses, Hyperliquid's share of
    each, valued at the mark (as ``positionValue`` is)."""
    mark = sim.mark(MARKET)
    return [
        Position(
            account=address_of(sim.config.seed, p.id),
            exchange="hyperliquid",
            symbol="BTC",
            market=MARKET,
            side=p.side,
            size=SHARE * p.quantity,
            entry_price=p.entry_price,
            margin="isolated",
            leverage=p.leverage,
            liquidation_price=p.liquidation_price,
            notional_usd=SHARE * p.quantity * mark,
        )
        for p in sim.truth.positions(MARKET)
        if address_of(sim.config.seed, p.id) in polled
    ]


async def test_the_measured_map_is_the_simulators_true_positions_of_the_sampled_accounts(
    tmp_path: Path,
) -> None:
    sim = Simulator(SimConfig(seed=11, n_markets=3, warmup_ms=600_000))
    steps: Iterator[SimStep] = sim.steps()
    step = next(steps)
    venue = SimulatedHyperliquid(("BTC",))
    async with venue:
        sampler = _sampler(venue, tmp_path)
        task = asyncio.create_task(sampler.run())
        try:
            await _until(lambda: venue.subscribed("BTC"), "the trades subscription")
            # The market stands still from here: the same book is observed (and its holders
            # named in trades) until enough accounts were polled.
            while sampler.stats.polls < 60 or MARKET not in sampler.contexts:
                venue.observe(sim, step)
                await asyncio.sleep(0.05)
            polled = {a for a, held in sampler.schedule.positions.items() if held}
            found = sampler.measured(MARKET, bucket=500)
        finally:
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
    truth = _true_sampled(sim, polled)
    open_interest_usd = SHARE * sim.truth.open_interest(MARKET) * sim.mark(MARKET)
    expected = measured_map(
        MARKET,
        truth,
        mark_price=sim.mark(MARKET),
        open_interest_usd=open_interest_usd,
        ts=found.ts,
        bucket=500,
    )
    assert len(truth) == len(polled) >= 60  # every polled address holds one true position
    assert found.prices == expected.prices
    assert found.long_usd == pytest.approx(expected.long_usd)
    assert found.short_usd == pytest.approx(expected.short_usd)
    assert sum(found.long_usd) > 0
    assert sum(found.short_usd) > 0
    assert found.positions == len(truth)
    assert found.open_interest_usd == pytest.approx(open_interest_usd)
    assert 0 < found.coverage <= 1
    assert found.coverage == pytest.approx(expected.coverage)
    assert (venue.rejected, venue.violations) == (0, [])


async def test_addresses_are_stable_across_a_restart_of_the_market() -> None:
    first, again = (Simulator(SimConfig(seed=4, n_markets=3, warmup_ms=600_000)) for _ in "ab")
    holders = []
    for sim in (first, again):
        venue = SimulatedHyperliquid(("BTC",))
        async with venue:
            venue.observe(sim, next(sim.steps()))
            holders.append(venue.holders("BTC"))
    assert holders[0] == holders[1]
    assert len(set(holders[0].values())) == len(holders[0]) > 100  # one address a position
