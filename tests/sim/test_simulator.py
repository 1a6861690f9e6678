"""The simulator's stream: deterministic, consistent events, exact liquidations, conservation."""

from __future__ import annotations

import dataclasses
import re
import tracemalloc
from collections import defaultdict

import numpy as np
import pytest

from purpleflea.model import encode, to_liquidation
from purpleflea.sim import EXCHANGE_SHARES, SimConfig, SimStep, Simulator
from purpleflea.sim.impact import log_move as impact_log_move
from purpleflea.sim.process import _largest_moves


def _stream_bytes(config: SimConfig, minutes: int) -> bytes:
    sim = Simulator(config)
    return b"\n".join(
        encode(event) for step in sim.run(minutes * 60_000) for event in step.liquidations
    )


def test_same_seed_gives_identical_bytes_and_another_seed_does_not() -> None:
    config = SimConfig(seed=5, n_markets=25, step_ms=500)
    first = _stream_bytes(config, 20)
    assert first.count(b"\n") > 100  # a real stream, not an empty one
    assert _stream_bytes(config, 20) == first
    assert _stream_bytes(SimConfig(seed=6, n_markets=25, step_ms=500), 20) != first


def test_events_are_consistent_and_ordered() -> None:
    sim = Simulator(SimConfig(seed=1, n_markets=40, step_ms=250))
    steps = list(sim.run(10 * 60_000))
    assert [s.ts for s in steps] == [sim.config.start_ms + 250 * (k + 1) for k in range(2400)]
    events = [event for step in steps for event in step.liquidations]
    assert len(events) > 100  # enough to check (a calm 10 minutes of 40 markets: 170)
    listings = {
        (spec.name, lst.exchange): lst.symbol for spec in sim.markets for lst in spec.listings
    }
    for n, event in enumerate(events):
        assert event.id == f"sim-1-{sim.config.start_ms}-{n}"
        assert event.size_usd == event.price * event.quantity
        assert event.quantity is not None
        assert event.quantity > 0
        assert event.exchange in EXCHANGE_SHARES
        assert listings[(event.market, event.exchange)] == event.symbol
        assert re.fullmatch(r"[A-Z0-9]+-PERP", event.market)
        to_liquidation(event, seq=n + 1, received_at=0, coverage="complete")  # publishable as is
    for step in steps:
        for event in step.liquidations:
            assert event.ts is not None
            assert step.ts - 250 < event.ts <= step.ts
    times = [event.ts or 0 for event in events]
    assert times == sorted(times)


def test_snapshots_every_minute_match_the_true_open_interest() -> None:
    sim = Simulator(SimConfig(seed=2, n_markets=10, step_ms=1000))
    seen = 0
    for step in sim.run(5 * 60_000):
        if not step.snapshots:
            continue
        seen += 1
        assert step.ts % 60_000 == sim.config.start_ms % 60_000
        per_market: dict[str, float] = defaultdict(float)
        for snap in step.snapshots:
            assert snap.ts == step.ts
            assert snap.open_interest >= 0
            assert snap.open_interest_usd == pytest.approx(snap.open_interest * snap.mark_price)
            # Each exchange quotes the market's mark times its basis (a few bp).
            assert snap.mark_price == pytest.approx(sim.mark(snap.market), rel=2e-3)
            per_market[snap.market] += snap.open_interest
        for market, coins in per_market.items():
            assert coins == pytest.approx(sim.truth.open_interest(market), rel=1e-9)
    assert seen == 5


def _open_book(sim: Simulator) -> dict[str, np.ndarray]:
    """The open positions as arrays (the engine's own book: fast enough to scan every step)."""
    book = sim.book
    alive = book.alive(sim.now_ms)
    return {
        "id": book.cohort_id[alive],
        "market": book.market[alive],
        "side": book.side[alive],
        "liq": book.liq[alive],
        "qty": book.qty[alive],
    }


def test_liquidations_happen_exactly_when_the_mark_crosses() -> None:
    """Every open position is on the safe side of the mark after every step; a position that
    vanished with the mark through its liquidation price was liquidated in that step: its
    first event is in that step and its events (``liquidated_user`` names it) add up to its
    quantity; positions only vanish otherwise when a block starts (voluntary closes). The
    one other way a position's quantity falls: a cross-margin account's part of it is closed
    (:mod:`purpleflea.sim.accounts`), one event of the still open position, and its
    quantity is that much less from the block the event is in."""
    config = SimConfig.demo(seed=7, n_markets=6, step_ms=1000, cascade_rate=100.0)
    sim = Simulator(config)
    before = _open_book(sim)
    liquidated: dict[str, tuple[float, int]] = {}  # cohort -> (quantity, step ts)
    closed: set[str] = set()
    reported: dict[str, float] = defaultdict(float)
    first_seen: dict[str, int] = {}
    shrunk: dict[str, float] = defaultdict(float)  # cohort -> quantity its accounts took
    by_accounts: dict[str, float] = defaultdict(float)  # cohort -> its account events' sum
    end = config.start_ms + 15 * 60_000
    for step in sim.run(15 * 60_000):
        marks = sim.marks()
        now = _open_book(sim)
        safe = (now["liq"] - marks[now["market"]]) * now["side"] < 0
        assert safe.all(), "an open position is past its liquidation price"
        block_start = (step.ts - config.start_ms) % config.block_ms == config.step_ms
        gone = ~np.isin(before["id"], now["id"])
        through = (before["liq"] - marks[before["market"]]) * before["side"] >= 0
        if block_start:  # closed as the block starts, the mark then going past its price
            named = {e.liquidated_user for e in step.liquidations}
            through &= np.array([f"cohort-{pid}" in named for pid in before["id"]], dtype=bool)
        for pid, qty in zip(
            before["id"][gone & through], before["qty"][gone & through], strict=True
        ):
            liquidated[f"cohort-{pid}"] = (float(qty), step.ts)
        if (gone & ~through).any():  # voluntary closes: only at block starts
            assert block_start
            closed.update(f"cohort-{pid}" for pid in before["id"][gone & ~through])
        kept, at_now = np.intersect1d(before["id"], now["id"], return_indices=True)[1:]
        less = before["qty"][kept] - now["qty"][at_now]
        if (less != 0).any():  # accounts' closes: only at block starts, never a rise
            assert block_start
            assert (less >= 0).all()
            for pid, qty in zip(now["id"][at_now][less > 0], less[less > 0], strict=True):
                shrunk[f"cohort-{pid}"] += float(qty)
        # By id, not name: naming every open position each step was two thirds of the test.
        open_now = set(now["id"].tolist()) if step.liquidations else set()
        for event in step.liquidations:
            cohort = event.liquidated_user
            assert cohort is not None
            assert event.quantity is not None
            assert cohort not in closed
            if int(cohort.removeprefix("cohort-")) in open_now:
                by_accounts[cohort] += event.quantity
                continue
            assert cohort in liquidated
            reported[cohort] += event.quantity
            first_seen.setdefault(cohort, step.ts)
        before = now
    assert len(liquidated) > 30, len(liquidated)
    for cohort, (quantity, ts) in liquidated.items():
        assert first_seen[cohort] == ts  # reported in the step it crossed
        if ts <= end - 30_000:  # all its forced orders are done
            assert reported[cohort] == pytest.approx(quantity, rel=1e-9)
    assert len(by_accounts) >= 3, len(by_accounts)
    assert by_accounts == pytest.approx(dict(shrunk), rel=1e-9)


def _both_sides(sim: Simulator, market: str) -> float:
    return sim.truth.open_interest(market, "long") + sim.truth.open_interest(market, "short")


def test_reported_open_interest_is_the_larger_side_of_the_book() -> None:
    sim = Simulator(SimConfig(seed=4, n_markets=12))
    for _ in sim.run(60_000):
        pass
    for market in sim.market_names:
        positions = sim.truth.positions(market)
        longs = sum(p.quantity for p in positions if p.side == "long")
        shorts = sum(p.quantity for p in positions if p.side == "short")
        assert longs > 0
        assert shorts > 0
        assert sim.truth.open_interest(market, "long") == pytest.approx(longs, rel=1e-9)
        assert sim.truth.open_interest(market, "short") == pytest.approx(shorts, rel=1e-9)
        assert sim.truth.open_interest(market) == pytest.approx(max(longs, shorts), rel=1e-9)
    with pytest.raises(ValueError, match="side"):
        sim.truth.open_interest("BTC-PERP", "both")  # type: ignore[arg-type]


def test_open_interest_is_conserved_and_never_negative() -> None:
    sim = Simulator(SimConfig.demo(seed=9, n_markets=15, step_ms=1000))
    start_oi = {m: _both_sides(sim, m) for m in sim.market_names}
    start_flows = {m: sim.truth.flows(m) for m in sim.market_names}
    reported: dict[str, float] = defaultdict(float)
    for step in sim.run(90 * 60_000):
        for event in step.liquidations:
            assert event.quantity is not None
            reported[event.market] += event.quantity
        for snap in step.snapshots:
            assert snap.open_interest >= 0
    assert any(reported.values())
    for market in sim.market_names:
        flows, first = sim.truth.flows(market), start_flows[market]
        opened = flows.opened - first.opened
        closed = flows.closed - first.closed
        liquidated = flows.liquidated - first.liquidated
        assert opened > 0
        assert closed > 0
        change = _both_sides(sim, market) - start_oi[market]
        assert change == pytest.approx(opened - closed - liquidated, rel=1e-9, abs=1e-9 * opened)
        # Events of the last seconds' liquidations may still be coming.
        assert reported[market] <= liquidated * (1 + 1e-9)
        assert all(p.quantity > 0 for p in sim.truth.positions(market))


def test_impact_is_linear_up_to_the_depth_then_square_root() -> None:
    assert impact_log_move(5e6, 10e6) == pytest.approx(0.005)
    assert impact_log_move(10e6, 10e6) == pytest.approx(0.01)
    assert impact_log_move(400e6, 1e6) == pytest.approx(0.01 * 20)
    assert impact_log_move(10e6, 10e6, scale=2.0) == pytest.approx(0.02)


def test_config_rejects_steps_that_do_not_divide_a_block() -> None:
    with pytest.raises(ValueError, match="step_ms"):
        SimConfig(step_ms=7000)
    with pytest.raises(ValueError, match="cascade_rate"):
        SimConfig(cascade_rate=0)


def test_steps_are_the_public_type_and_each_covers_its_own_interval() -> None:
    """What ``purpleflea.sim`` documents: ``SimStep`` is the type steps have (not a private
    twin of it), ``ts`` ends the step, its liquidations happened within it, and each block's
    snapshots come with its last step."""
    config = SimConfig(n_markets=20, seed=17)
    steps = list(Simulator(config).run(5 * config.block_ms))
    assert {type(step) for step in steps} == {SimStep}
    assert [step.ts for step in steps] == [
        config.start_ms + (k + 1) * config.step_ms for k in range(len(steps))
    ]
    events = [(step.ts, e) for step in steps for e in step.liquidations]
    assert events, "five minutes of twenty markets had no liquidation to check"
    assert all(ts - config.step_ms < (e.ts or 0) <= ts for ts, e in events)
    per_block = config.block_ms // config.step_ms
    with_snapshots = [k for k, step in enumerate(steps) if step.snapshots]
    assert with_snapshots == [k for k in range(len(steps)) if k % per_block == per_block - 1]


def test_a_run_started_later_never_reuses_an_earlier_runs_ids() -> None:
    # A restarted server starts its simulator at a new time: its events must not dedupe
    # against (and vanish behind) the ones it stored before the restart.
    first = Simulator(SimConfig(seed=17, n_markets=20, start_ms=1_760_000_000_000))
    second = Simulator(SimConfig(seed=17, n_markets=20, start_ms=1_760_000_600_000))
    ids_first = {e.id for step in first.run(5 * 60_000) for e in step.liquidations}
    ids_second = {e.id for step in second.run(5 * 60_000) for e in step.liquidations}
    assert ids_first
    assert ids_second
    assert not ids_first & ids_second


def test_a_capture_into_an_earlier_one_reuses_its_arrays_and_equals_a_fresh_copy() -> None:
    """The live source captures the state after every block; a fresh copy each time allocated
    and freed the whole book (16 MB for 275 markets) per block (bench/results/soak.md)."""
    sim = Simulator(SimConfig(seed=4, n_markets=20))
    sim.next_block()
    earlier = sim.capture_state()
    sim.next_block()
    fresh = sim.capture_state()
    tracemalloc.start()
    try:
        reused = sim.capture_state(into=earlier)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    book_bytes = sum(column.nbytes for column in fresh.book.values())
    assert peak < book_bytes / 10, (peak, book_bytes)
    for name, column in fresh.book.items():
        assert np.shares_memory(reused.book[name], earlier.book[name]), name
        assert np.array_equal(reused.book[name], column), name
    for name, values in fresh.markets.items():
        assert np.shares_memory(reused.markets[name], earlier.markets[name]), name
        assert np.array_equal(reused.markets[name], values), name
    assert np.array_equal(reused.marks, fresh.marks)
    assert (reused.now_ms, reused.next_cohort, reused.rng, reused.h_common) == (
        fresh.now_ms,
        fresh.next_cohort,
        fresh.rng,
        fresh.h_common,
    )
    # A state of another market (other sizes) lends nothing: the capture is a new copy.
    other = Simulator(SimConfig(seed=4, n_markets=10)).capture_state()
    into_other = sim.capture_state(into=other)
    assert not np.shares_memory(into_other.book["qty"], other.book["qty"])
    assert np.array_equal(into_other.book["qty"], fresh.book["qty"])


def test_the_blocks_largest_moves_are_the_largest_logarithm_bit_for_bit() -> None:
    # Simulator._largest_moves takes logarithms near each column's extremes only; it must
    # give what the logarithm of every ratio gives, ties and one-ulp neighbours included.
    rng = np.random.default_rng(11)
    for trial in range(300):
        steps, markets = int(rng.integers(1, 40)), int(rng.integers(1, 30))
        previous = np.exp(rng.normal(0.0, 3.0, markets))
        if trial % 3 == 0:  # a path: small moves, a few large
            moves = rng.normal(0.0, 1e-3, (steps, markets)) * rng.choice([1, 50], (steps, 1))
            marks = previous * np.exp(np.cumsum(moves, axis=0))
        elif trial % 3 == 1:  # flat, with marks one or two ulps either side
            marks = np.tile(previous, (steps, 1))
            for _ in range(2):
                nudged = rng.random((steps, markets)) < 0.4
                up = rng.random((steps, markets)) < 0.5
                marks[nudged] = np.nextafter(marks, np.where(up, np.inf, 0.0))[nudged]
        else:  # crashes and squeezes
            marks = previous * np.exp(rng.normal(0.0, 0.7, (steps, markets)))
        expected = np.abs(np.log(marks / previous)).max(axis=0)
        assert _largest_moves(marks, previous).tobytes() == expected.tobytes(), trial


def test_open_interest_from_the_sides_held_as_the_block_started_is_the_books_own() -> None:
    # Within a block, the open interest is read from the sides open at the block's start
    # less those liquidated since (Book.open_interest's held): the same bits as from the
    # book's slots themselves, at any moment of the block.
    sim = Simulator(
        SimConfig.demo(seed=2, n_markets=20, step_ms=1000, block_ms=300_000, snapshot_ms=300_000)
    )
    checked = 0
    for _ in range(12):
        raw = sim.next_block()
        held = sim._sides
        assert held is not None
        for ts in np.linspace(raw.start_ms, raw.end_ms, 7).astype(int).tolist():
            expected = sim.book.open_interest(ts, sim.config.n_markets)
            # From the block's held sides, with and without the slots it liquidated.
            for gone in (None, sim._gone):
                got = sim.book.open_interest(ts, sim.config.n_markets, held, gone)
                assert got[0].tobytes() == expected[0].tobytes()
                assert got[1].tobytes() == expected[1].tobytes()
        gone = np.flatnonzero(sim.book.gone_ms != np.iinfo(np.int64).max)
        assert sim._gone is not None
        assert np.array_equal(np.sort(sim._gone), gone)  # what the next block empties
        checked += gone.size
    assert checked > 0  # some cohorts were liquidated inside the blocks


def test_a_slot_has_a_closing_time_exactly_while_it_holds_a_cohort() -> None:
    # The traders' step finds expiring cohorts by their closing time alone (no pass over the
    # quantities): through a crash's de-risking wave, liquidations, accounts and a restart.
    never = np.iinfo(np.int64).max
    config = SimConfig.served(seed=3, n_markets=20, block_ms=60_000, snapshot_ms=60_000)
    sim = Simulator(config)
    for _ in range(12):  # the first wave, where holders close at random
        sim.next_block()
        assert np.array_equal(sim.book.qty > 0, sim.book.close_ms != never)
    assert sim.book.gone_ms.min() < never  # the last block liquidated cohorts
    later = dataclasses.replace(config, start_ms=sim.now_ms + 3_600_000, epoch=1)
    resumed = Simulator.from_state(later, sim.capture_state())
    assert np.array_equal(resumed.book.qty > 0, resumed.book.close_ms != never)
    for _ in range(3):
        resumed.next_block()
        assert np.array_equal(resumed.book.qty > 0, resumed.book.close_ms != never)
