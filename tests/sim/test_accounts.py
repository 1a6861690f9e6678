"""Cross-margin accounts liquidated as a whole (purpleflea.sim.accounts)."""

from __future__ import annotations

import numpy as np

from purpleflea.sim import Simulator, accounts
from purpleflea.sim.events import NO_RUN
from purpleflea.sim.history import blocks, history_config
from purpleflea.sim.markets import universe
from purpleflea.sim.shares import cumulative


def _venues() -> tuple[accounts.Venues, np.ndarray, tuple[str, ...]]:
    specs = universe(40)
    oi = np.array([s.oi_usd for s in specs])
    nominal = np.zeros((len(specs), max(len(s.listings) for s in specs)))
    for m, spec in enumerate(specs):
        nominal[m, : len(spec.listings)] = [lst.share for lst in spec.listings]
    counts = np.array([len(s.listings) for s in specs])
    names = tuple(s.name for s in specs)
    return accounts.Venues.of(specs, oi), cumulative(nominal, counts), names


def test_an_accounts_positions_are_on_one_exchange_in_distinct_markets_at_one_moment() -> None:
    venues, cum, _ = _venues()
    specs = universe(40)
    rng = np.random.default_rng(3)
    drawn = [
        accounts.draw(rng, venues, cum, mean_accounts=50.0, steps=300, step_ms=1000)
        for _ in range(40)
    ]
    n_accounts = [len(set(d.account.tolist())) for d in drawn]
    assert 40 < np.mean(n_accounts) < 55  # Poisson(50), less those left with no position
    held = np.concatenate([np.bincount(d.account) for d in drawn])
    held = held[held > 0]
    # 1 + Geometric: P(more) = MORE_POSITIONS, less markets the account's exchange lacks.
    assert 1.5 < held.mean() < 1 / (1 - accounts.MORE_POSITIONS)
    for d in drawn:
        for a in np.unique(d.account):
            rows = d.account == a
            assert len(set(d.step[rows].tolist())) == 1
            assert len(set(d.jitter_ms[rows].tolist())) == 1
            assert len(set(d.market[rows].tolist())) == rows.sum()
            exchanges = {
                specs[m].listings[li].exchange
                for m, li in zip(d.market[rows], d.listing[rows], strict=True)
            }
            assert len(exchanges) == 1
        assert ((d.step >= 0) & (d.step < 300)).all()
        assert ((d.jitter_ms >= 1) & (d.jitter_ms <= 1000)).all()
        assert (d.usd > 0).all()


def test_pick_cohorts_takes_only_open_slots_each_once() -> None:
    seg = np.array([0, 4, 10])
    qty = np.array([0.0, 1.0, 0.0, 2.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0])
    gone = np.full(10, np.iinfo(np.int64).max)
    gone[3] = 5  # liquidated in this block
    rng = np.random.default_rng(0)
    picked = accounts.pick_cohorts(rng, seg, np.array([0, 0, 1, 1, 1]), qty, gone, tries=64)
    assert picked[0] == 1  # market 0's only open, not liquidated slot
    assert picked[1] == -1  # ... taken already
    found = [slot for slot in picked[2:].tolist() if slot >= 0]
    # Market 1's open slots, each once (a position whose draw another took is dropped).
    assert found
    assert set(found) <= {4, 5}
    assert len(set(found)) == len(found)


def test_the_stream_has_several_symbols_in_one_millisecond_as_binance_does() -> None:
    # Real Binance sessions: 11-43 % of events share their millisecond with another
    # symbol's (bench/sim_realism.py); the cohorts alone made almost no such moment.
    sim = Simulator(history_config(seed=5))
    binance = [[lst.exchange == "binance_usdm" for lst in spec.listings] for spec in sim.markets]
    ts_all, market_all, run_all = [], [], []
    for raw in blocks(sim, 0.25):
        on = np.array([binance[m][li] for m, li in zip(raw.market, raw.listing, strict=True)])
        ts_all.append(raw.ts[on])
        market_all.append(raw.market[on])
        run_all.append(raw.run[on])
    ts, market, run = (np.concatenate(x) for x in (ts_all, market_all, run_all))
    # Thinned as Binance's stream is: the last event per symbol per second.
    order = np.argsort(ts, kind="stable")
    ts, market, run = ts[order], market[order], run[order]
    key = market * 10**11 + ts // 1000
    last = np.sort(ts.size - 1 - np.unique(key[::-1], return_index=True)[1])
    ts, market, run = ts[last], market[last], run[last]
    moments: dict[int, set[int]] = {}
    for t, m in zip(ts.tolist(), market.tolist(), strict=True):
        moments.setdefault(t, set()).add(m)
    shared = np.array([len(moments[t]) > 1 for t in ts.tolist()])
    assert 0.08 < shared.mean() < 0.5, shared.mean()
    # Those moments are accounts' closes, not cohorts' liquidations.
    assert (run[shared] == NO_RUN).mean() > 0.8
