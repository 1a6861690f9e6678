"""Ground truth: positions, notional at risk, true cascades."""

from __future__ import annotations

import numpy as np
import pytest

from purpleflea.sim import SimConfig, Simulator


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
    events = [e for step in sim.run(3 * 3_600_000) for e in step.liquidations]
    cascades = sim.truth.cascades()
    assert len(cascades) >= 3
    for c in cascades:
        assert c.impact_driven >= 2
        depth = sim.markets[sim.market_index[c.market]].depth_usd
        assert c.notional_usd >= config.cascade_min_depth * depth
        assert c.known_ms <= sim.now_ms
        mine = [
            e
            for e in events
            if e.market == c.market and e.side == c.side and c.start_ms <= (e.ts or 0) <= c.end_ms
        ]
        # The window holds exactly the run's events, and their notional.
        assert len(mine) == c.events
        assert sum(e.size_usd or 0 for e in mine) == pytest.approx(c.notional_usd, rel=1e-9)
        # Long cascades push the price down, short ones up.
        assert (c.end_price < c.start_price) == (c.side == "long")


def test_cascades_are_not_reported_before_they_are_known_to_be_over() -> None:
    sim = Simulator(SimConfig.demo(seed=11, n_markets=30, step_ms=1000))
    for step in sim.run(3 * 3_600_000):
        for c in sim.truth.cascades():
            assert c.known_ms <= step.ts
