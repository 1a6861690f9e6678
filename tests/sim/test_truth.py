"""Ground truth: positions, notional at risk, true cascades."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from purpleflea.sim import SimConfig, Simulator
from purpleflea.sim.events import NO_RUN
from purpleflea.sim.truth import (
    Definition,
    LiquidationStream,
    TrueCascade,
    first_wave_moment,
    merge_cascades,
    wave_cascades,
)


def test_positions_carry_their_true_liquidation_price() -> None:
    sim = Simulator(SimConfig(seed=1, n_markets=5))
    positions = sim.truth.positions("ETH-PERP")
    assert len(positions) > 50
    assert {p.market for p in positions} == {"ETH-PERP"}
    assert {p.side for p in positions} == {"long", "short"}
    for p in positions:
        sign = 1 if p.side == "long" else -1
        expected = p.entry_price * (1 - sign / p.leverage + sign * p.mmr)
        assert p.liquidation_price == pytest.approx(expected, rel=1e-12)
        assert 2 <= p.leverage <= 125
        assert p.notional_usd == pytest.approx(p.quantity * p.liquidation_price)
    assert len({p.id for p in sim.truth.positions()}) == len(sim.truth.positions())


def test_notional_at_risk_buckets_the_positions() -> None:
    sim = Simulator(SimConfig(seed=2, n_markets=3))
    for _ in sim.run(5 * 60_000):
        pass
    mark = sim.mark("BTC-PERP")
    edges = np.linspace(0.5 * mark, 1.5 * mark, 101)
    longs = sim.truth.notional_at_risk("BTC-PERP", "long", edges)
    shorts = sim.truth.notional_at_risk("BTC-PERP", "short", edges)
    assert longs.shape == (100,)
    positions = sim.truth.positions("BTC-PERP")
    in_range = [p for p in positions if edges[0] <= p.liquidation_price < edges[-1]]
    expected_long = sum(p.notional_usd for p in in_range if p.side == "long")
    expected_short = sum(p.notional_usd for p in in_range if p.side == "short")
    assert longs.sum() == pytest.approx(expected_long)
    assert shorts.sum() == pytest.approx(expected_short)
    # Longs are liquidated below the mark, shorts above.
    assert longs[edges[:-1] >= mark].sum() == 0
    assert shorts[edges[1:] <= mark].sum() == 0
    assert longs.sum() > 0
    assert shorts.sum() > 0
    with pytest.raises(ValueError, match="increasing"):
        sim.truth.notional_at_risk("BTC-PERP", "long", [3.0, 2.0])
    with pytest.raises(KeyError, match="NOPE-PERP"):
        sim.truth.notional_at_risk("NOPE-PERP", "long", edges)


def test_true_cascades_match_their_definition_and_the_stream() -> None:
    config = SimConfig.demo(seed=11, n_markets=30, step_ms=1000)
    sim = Simulator(config)
    raws = [sim.next_block() for _ in range(3 * 3_600_000 // config.block_ms)]
    # The truth's notional is what the market absorbed: the events' fills (a bankruptcy-
    # quoting venue reports its events a maintenance margin off them).
    ts, market, side, usd, run = (
        np.concatenate([getattr(r, k) for r in raws])
        for k in ("ts", "market", "side", "filled_usd", "run")
    )
    # A cross-margin account's close is one event of a position still open (sim.accounts),
    # part of no run.
    accounts = run == NO_RUN
    assert 0 < accounts.sum() < 0.2 * run.size
    cascades = sim.truth.cascades()
    assert len(cascades) >= 3
    for c in cascades:
        assert c.impact_driven >= 2
        depth = sim.markets[sim.market_index[c.market]].depth_usd
        assert c.notional_usd >= config.cascade_min_depth * depth
        assert c.known_ms <= sim.now_ms
        m, sign = sim.market_index[c.market], 1 if c.side == "long" else -1
        mine = (market == m) & (side == sign) & (c.start_ms <= ts) & (ts <= c.end_ms)
        # The window holds exactly the run's events (besides accounts' closes), and their
        # notional.
        assert (mine & ~accounts).sum() == c.events
        assert usd[mine & ~accounts].sum() == pytest.approx(c.notional_usd, rel=1e-9)
        assert len(set(run[mine & ~accounts].tolist())) == 1
        # Long cascades push the price down, short ones up.
        assert (c.end_price < c.start_price) == (c.side == "long")


def test_cascades_are_not_reported_before_they_are_known_to_be_over() -> None:
    sim = Simulator(SimConfig.demo(seed=11, n_markets=30, step_ms=1000))
    for step in sim.run(3 * 3_600_000):
        for c in sim.truth.cascades():
            assert c.known_ms <= step.ts


def _stream(events: list[tuple[int, int, float]]) -> LiquidationStream:
    """One market's long liquidations: (ts, cohort, usd) rows."""
    return LiquidationStream(
        names=("X-PERP",),
        markets=np.zeros(len(events), dtype=np.int64),
        sides=np.ones(len(events), dtype=np.int64),
        ts=np.array([t for t, _, _ in events], dtype=np.int64),
        usd=np.array([u for _, _, u in events], dtype=np.float64),
        prices=np.linspace(100.0, 99.0, len(events)),
        cohorts=np.array([c for _, c, _ in events], dtype=np.int64),
    )


# 1 % depth $1M and share 0.25: a wave sweeps $250k within a minute.
DEPTH = {"X-PERP": 1_000_000.0}


def _waves(stream: LiquidationStream, definition: Definition = "wave") -> list[TrueCascade]:
    return wave_cascades(stream, DEPTH, min_depth=0.25, gap_ms=60_000, definition=definition)


def test_a_wave_of_the_markets_size_over_three_seconds_is_a_cascade() -> None:
    # $300k within 20 s over four seconds, two positions; a calm event 5 minutes before.
    stream = _stream(
        [
            (0, 1, 1_000.0),
            (300_000, 2, 80_000.0),
            (305_000, 2, 70_000.0),
            (312_000, 3, 90_000.0),
            (320_000, 3, 60_000.0),
        ]
    )
    [wave] = _waves(stream)
    assert (wave.start_ms, wave.end_ms) == (300_000, 320_000)
    assert wave.notional_usd == pytest.approx(300_000.0)
    assert wave.events == 4
    assert wave.cohorts == 2
    # Confirmed at the fourth event, where the minute first holds $250k.
    i = first_wave_moment(stream.ts[1:], stream.usd[1:], stream.ts[1:] // 1000, 250_000.0)
    assert i == 3
    # Two positions only: not a wave by the stricter "positions" variant.
    assert _waves(stream, "positions") == []


def test_a_run_below_the_markets_size_is_not_a_cascade() -> None:
    # $240k over four seconds: short of 0.25 x $1M.
    stream = _stream([(s * 1_000, s, 60_000.0) for s in range(4)])
    assert _waves(stream) == []


def test_a_run_spread_over_more_than_a_minute_is_not_a_cascade() -> None:
    # $400k in one run (gaps of 50 s) but never $250k within one minute.
    stream = _stream([(s * 50_000, s, 100_000.0) for s in range(4)])
    assert _waves(stream) == []


def test_a_burst_all_in_one_second_is_not_a_cascade() -> None:
    # $600k, six positions, but all within one second: one throttled print's worth.
    stream = _stream([(10_000 + 100 * k, k, 100_000.0) for k in range(6)])
    assert _waves(stream) == []
    assert len(_waves(stream, "positions")) == 1


def test_the_impact_truth_is_kept_inside_the_merged_wave_truth() -> None:
    stream = _stream([(s * 5_000, s, 100_000.0) for s in range(4)])
    [wave] = _waves(stream)
    impact = replace(wave, start_ms=10_000, end_ms=30_000, impact_driven=2)
    apart = replace(wave, start_ms=500_000, end_ms=510_000, impact_driven=3)
    merged = merge_cascades([impact, apart], [wave])
    assert [(c.start_ms, c.end_ms, c.impact_driven) for c in merged] == [
        (0, 30_000, 2),
        (500_000, 510_000, 3),
    ]
