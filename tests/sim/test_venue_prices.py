"""Each exchange's events carry the price its feed sends: a fill, or the position's bankruptcy
price (issue 20: OKX's ``bkPx`` sits a maintenance margin off the market, in tracks)."""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import pytest

from purpleflea.sim import SimConfig, Simulator
from purpleflea.sim import process as sim_process
from purpleflea.sim.book import NEVER
from purpleflea.sim.events import RawBlock, quotes_bankruptcy
from purpleflea.venues import registry

BLOCKS = 30


def _run(
    sim: Simulator, count: int
) -> tuple[list[RawBlock], dict[int, tuple[float, float]], np.ndarray]:
    """``count`` blocks, each liquidated cohort's bankruptcy and liquidation prices (id ->
    prices, in the mark's units) and each block's exp(basis) per listing (blocks x markets x
    listings)."""
    raws: list[RawBlock] = []
    prices: dict[int, tuple[float, float]] = {}
    bases = []
    book = sim.book
    for _ in range(count):
        raws.append(sim.next_block())
        gone = np.flatnonzero(book.gone_ms != NEVER)
        for slot in gone.tolist():
            prices[int(book.cohort_id[slot])] = (
                float(book.entry[slot] * (1.0 - book.side[slot] / book.lev[slot])),
                float(book.liq[slot]),
            )
        with np.errstate(invalid="ignore"):
            bases.append(sim.listing_prices() / sim.marks()[:, None])
    return raws, prices, np.array(bases)


def _exchanges(sim: Simulator, raw: RawBlock) -> np.ndarray:
    names = [[lst.exchange for lst in spec.listings] for spec in sim.markets]
    return np.array([names[m][li] for m, li in zip(raw.market, raw.listing, strict=True)])


def test_the_declared_price_kinds_decide_who_quotes_bankruptcy_prices() -> None:
    assert not any(quotes_bankruptcy(e) for e in registry.fill_priced())
    for exchange in ("bybit", "okx", "htx", "bitmex", "gate", "bitget"):
        assert quotes_bankruptcy(exchange)


def test_longs_on_bankruptcy_venues_sit_in_two_tracks_at_and_a_margin_under_binances_fill() -> None:
    """Real OKX ``bkPx`` come in two tracks one maintenance margin apart (events.py,
    LIQUIDATION_TRACK_SHARE): the nearer at the liquidation price, by the market."""
    sim = Simulator(SimConfig(seed=1, n_markets=20))
    mmr = np.array([spec.mmr for spec in sim.markets])
    # Per (market, second): long events' prices on Binance USD-M and on OKX/Bybit.
    seconds: dict[tuple[int, int], dict[bool, list[float]]] = defaultdict(lambda: defaultdict(list))
    for _ in range(BLOCKS):
        raw = sim.next_block()
        exchange = _exchanges(sim, raw)
        for i in np.flatnonzero(raw.side > 0).tolist():
            if exchange[i] in ("okx", "bybit", "binance_usdm"):
                key = (int(raw.market[i]), int(raw.ts[i]) // 1000)
                seconds[key][exchange[i] == "binance_usdm"].append(float(raw.price[i]))
    gaps = np.array(
        [
            (price / np.median(by[True]) - 1) / mmr[market]
            for (market, _), by in seconds.items()
            if by[True]
            for price in by[False]
        ]
    )
    assert gaps.size >= 200
    bankrupt = gaps < -0.5
    # The nearer track's share, drawn per event.
    assert 0.31 < 1 - bankrupt.mean() < 0.47
    # The far one about a maintenance margin under the fill (a bit more at low leverage or
    # for a whale's doubled margin); the near one by the fill: not the few bp of the basis.
    assert -1.3 < np.median(gaps[bankrupt]) < -0.8
    assert -0.3 < np.median(gaps[~bankrupt]) < 0.3


def test_each_position_is_quoted_at_its_own_bankruptcy_or_liquidation_price() -> None:
    sim = Simulator(SimConfig(seed=2, n_markets=20))
    raws, prices, bases = _run(sim, 2 * BLOCKS)
    exact, at_liquidation, further, tracks = 0, 0, 0, 0
    total = 0
    for k, raw in enumerate(raws):
        exchange = _exchanges(sim, raw)
        levels: dict[tuple[int, int, int], set[float]] = defaultdict(set)
        for i in np.flatnonzero([quotes_bankruptcy(e) for e in exchange]).tolist():
            cohort = int(raw.cohort[i])
            if raw.run[i] == 0 or cohort not in prices:
                continue  # a cross-margin account's position (below) or one seen earlier
            basis = bases[k, raw.market[i], raw.listing[i]]
            offs = [float(raw.price[i] / (own * basis) - 1) for own in prices[cohort]]
            total += 1
            # Its own position's price, either track (rounded to 5 significant digits), or a
            # straggler's further out: never nearer the market.
            if abs(offs[0]) < 1e-4:
                exact += 1
            elif abs(offs[1]) < 1e-4:
                at_liquidation += 1
            else:
                further += max(-raw.side[i] * off for off in offs) >= 1e-4
            levels[(int(raw.market[i]), int(raw.side[i]), int(raw.ts[i]) // 10_000)].add(
                float(raw.price[i])
            )
        tracks += sum(len(v) >= 2 for v in levels.values())
    assert total >= 400
    assert exact + at_liquidation + further == total
    assert exact + at_liquidation >= 0.7 * total  # a cohort's later events: the same positions
    assert 0.3 < at_liquidation / (exact + at_liquidation) < 0.48
    assert tracks >= 40  # 10 s of a market and side holding several prices


def test_a_cross_margin_accounts_positions_sit_a_margin_past_the_mark() -> None:
    sim = Simulator(SimConfig(seed=3, n_markets=20))
    mmr = np.array([spec.mmr for spec in sim.markets])
    offs: list[float] = []
    tracked = 0
    for _ in range(4 * BLOCKS):  # two hours: a few hundred accounts over 20 markets a day
        raw = sim.next_block()
        exchange = _exchanges(sim, raw)
        account = (raw.run == 0) & np.array([quotes_bankruptcy(e) for e in exchange], dtype=bool)
        # A single account's order is small: its fill is the mark times the basis.
        off = (raw.price / raw.fill - 1) * -raw.side
        margin = mmr[raw.market]
        # One maintenance margin (two for a whale cohort's trader) or, on the nearer track, the
        # mark itself, to the rounding of both prices to 5 significant digits.
        nearest = np.minimum(np.abs(off - margin), np.abs(off - 2 * margin))
        offs += np.minimum(nearest, np.abs(off))[account].tolist()
        tracked += int((np.abs(off) < 2e-4)[account].sum())
    assert len(offs) >= 20
    assert max(offs) < 2e-4
    assert 0 < tracked < len(offs)


def test_fill_venues_and_the_rest_of_the_stream_do_not_change(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sims = {}
    sims[True] = Simulator(SimConfig(seed=4, n_markets=20))
    monkeypatch.setattr(sim_process, "quotes_bankruptcy", lambda exchange: False)
    sims[False] = Simulator(SimConfig(seed=4, n_markets=20))
    fills = registry.fill_priced()
    changed = 0
    for _ in range(BLOCKS):
        a, b = sims[True].next_block(), sims[False].next_block()
        for field in ("ts", "market", "listing", "side", "quantity", "run", "cohort", "fill"):
            assert np.array_equal(getattr(a, field), getattr(b, field)), field
        on_fills = np.isin(_exchanges(sims[True], a), list(fills))
        assert np.array_equal(a.price[on_fills], b.price[on_fills])
        assert np.array_equal(b.price, b.fill)  # all fills, as before bankruptcy prices
        changed += int((a.price[~on_fills] != b.price[~on_fills]).sum())
    assert changed > 500
