"""The cascade engine: scores, alert lifecycle, scale invariance and no look-ahead."""

from __future__ import annotations

import random
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from purpleflea.engine import CascadeConfig, CascadeEngine
from purpleflea.engine.cascade import format_duration
from purpleflea.model import CascadeAlert

T0 = 1_700_000_000_000
Event = tuple[str, str, float, float, int, str]


def calm(market: str, hours: float, *, per_hour: float, size: float, seed: int) -> list[Event]:
    """Background liquidations: Poisson times, lognormal sizes, both sides."""
    rng = random.Random(seed)
    events: list[Event] = []
    t = float(T0)
    while t < T0 + hours * 3_600_000:
        t += rng.expovariate(per_hour / 3_600_000)
        side = "long" if rng.random() < 0.5 else "short"
        events.append((market, side, size * rng.lognormvariate(0, 0.8), 100.0, int(t), "bybit"))
    return events


def burst(
    market: str, start_ms: int, *, count: int, seconds: float, size: float, side: str = "long"
) -> list[Event]:
    """A cascade: ``count`` liquidations of one side in ``seconds``, each moving price 0.1%
    against the liquidated side (down for longs, up for shorts)."""
    step = seconds * 1000 / count
    sign = -1 if side == "long" else 1
    return [
        (
            market,
            side,
            size,
            100.0 * (1 + sign * 0.001 * i),
            start_ms + int(i * step),
            "binance_usdm" if i % 2 else "okx",
        )
        for i in range(count)
    ]


def run(events: list[Event], engine: CascadeEngine) -> tuple[list[int], list[CascadeAlert]]:
    """Replay with a tick every second, as the server does."""
    scores: list[int] = []
    alerts: list[CascadeAlert] = []
    second = events[0][4] // 1000 if events else 0
    for market, side, size, price, ts, exchange in sorted(events, key=lambda e: e[4]):
        while second < ts // 1000:
            second += 1
            alerts += engine.tick(second * 1000)
        scores.append(engine.observe(market, side, size, price, ts, exchange))  # type: ignore[arg-type]
        alerts += engine.drain_alerts()
    return scores, alerts


def test_calm_market_stays_low_and_a_burst_scores_high() -> None:
    background = calm("BTC-PERP", 6, per_hour=60, size=20_000, seed=1)
    cascade_start = T0 + 5 * 3_600_000
    events = background + burst("BTC-PERP", cascade_start, count=40, seconds=60, size=20_000_000)
    engine = CascadeEngine()
    scores, alerts = run(events, engine)
    ordered = sorted(events, key=lambda e: e[4])
    calm_scores = [s for e, s in zip(ordered, scores, strict=True) if e[4] < cascade_start]
    late_calm = calm_scores[len(calm_scores) // 3 :]  # after warm-up
    assert sum(s >= 7 for s in late_calm) <= len(late_calm) * 0.002
    assert max(scores) >= 8
    started = [a for a in alerts if a.status == "started"]
    assert any(a.started_at >= cascade_start - 90_000 for a in started)


def test_lifecycle_started_updated_exhausted_with_message() -> None:
    events = calm("ETH-PERP", 2, per_hour=120, size=5_000, seed=2)
    start = T0 + 2 * 3_600_000
    events += burst("ETH-PERP", start, count=60, seconds=120, size=1_000_000)
    engine = CascadeEngine()
    _, alerts = run(events, engine)
    # Let time pass with no events: the cascade exhausts on a tick.
    end = max(e[4] for e in events)
    for second in range(end // 1000 + 1, end // 1000 + 120):
        alerts += engine.tick(second * 1000)
    mine = [a for a in alerts if a.started_at >= start - 90_000 and a.side == "long"]
    statuses = [a.status for a in mine]
    assert statuses[0] == "started"
    assert statuses[-1] == "exhausted"
    assert "updated" in statuses
    assert len({a.id for a in mine}) == 1
    first, last = mine[0], mine[-1]
    assert first.score >= 7
    assert first.message.startswith("ETH-PERP: $")
    assert "of longs liquidated in 90 s" in first.message
    assert "downside momentum likely to continue." in first.message
    assert last.total_usd >= 60 * 1_000_000 * 0.99
    assert last.events >= 60
    assert last.price_move_pct < -4  # the burst walked price down 0.1% per event
    assert set(last.exchanges) >= {"binance_usdm", "okx"}
    assert last.peak_score >= first.score
    assert engine.active() == []
    # Updates are rate-limited: far fewer than events.
    assert statuses.count("updated") <= 120 / CascadeConfig().update_min_s


def _mixed_kinds(start: int, count: int, seconds: float) -> list[Event]:
    """A long cascade walking the market down 0.1 % an event, seen on two venues: the fill
    venue's prices are the market's; the other's are bankruptcy prices 0.5 % below it, as
    OKX's ``bkPx`` sits 0.4-0.6 % from the market (docs/cascade.md). The first and the last
    event are the bankruptcy venue's."""
    step = seconds * 1000 / count
    events: list[Event] = []
    for i in range(count):
        market = 100.0 * (1 - 0.001 * i)
        fill = 0 < i < count - 1 and i % 2 == 1
        price, exchange = (market, "binance_usdm") if fill else (market * 0.995, "okx")
        events.append(("ETH-PERP", "long", 1_000_000.0, price, start + int(step * i), exchange))
    return events


def test_an_alerts_price_move_is_read_from_fill_prices_when_it_has_any() -> None:
    # Before, start and last price were the first and the last event's whatever the venue's
    # kind of price: here both bankruptcy prices, but a bankruptcy start against a fill end
    # (or the reverse) adds or takes the 0.5 % gap from the move.
    events = calm("ETH-PERP", 2, per_hour=120, size=5_000, seed=2)
    start = T0 + 2 * 3_600_000
    burst_events = _mixed_kinds(start, count=61, seconds=120)
    events += burst_events
    engine = CascadeEngine(fill_priced={"binance_usdm"})
    _, alerts = run(events, engine)
    end = burst_events[-1][4] // 1000
    for second in range(end + 1, end + 120):  # quiet: the cascade exhausts
        alerts += engine.tick(second * 1000)
    mine = [a for a in alerts if a.started_at >= start - 90_000 and a.side == "long"]
    assert [a.status for a in mine][:: len(mine) - 1] == ["started", "exhausted"]
    fills = [e for e in burst_events if e[5] == "binance_usdm"]
    for alert in mine:
        # The oldest fill in the alert's window at start, and the latest fill seen.
        seen = [e for e in fills if e[4] <= alert.updated_at]
        assert alert.id == mine[0].id
        assert alert.last_price == seen[-1][3]
        assert alert.start_price in {e[3] for e in fills}
        assert alert.price_move_pct == pytest.approx(
            (alert.last_price / alert.start_price - 1) * 100
        )
    first_fill = fills[0]
    assert mine[0].start_price == first_fill[3]  # the window holds the burst's start
    # The market moved 0.1 % an event from the first fill (event 1) to the last (event 59).
    assert mine[-1].price_move_pct == pytest.approx((fills[-1][3] / first_fill[3] - 1) * 100)


def test_a_cascade_with_no_fill_priced_event_reads_every_price() -> None:
    events = calm("ETH-PERP", 2, per_hour=120, size=5_000, seed=2)
    start = T0 + 2 * 3_600_000
    only_bankruptcy = [(*e[:5], "okx") for e in _mixed_kinds(start, count=61, seconds=120)]
    events += only_bankruptcy
    found: list[list[CascadeAlert]] = []
    for engine in (CascadeEngine(fill_priced={"binance_usdm"}), CascadeEngine()):
        _, alerts = run(events, engine)
        end = only_bankruptcy[-1][4] // 1000
        for second in range(end + 1, end + 120):
            alerts += engine.tick(second * 1000)
        found.append(alerts)
    assert [a.to_dict() for a in found[0]] == [a.to_dict() for a in found[1]]
    exhausted = found[0][-1]
    assert exhausted.status == "exhausted"
    assert exhausted.last_price == only_bankruptcy[-1][3]  # the last event's, a bankruptcy price


def test_the_price_kinds_change_no_score_and_no_alert_time() -> None:
    events = calm("ETH-PERP", 2, per_hour=120, size=5_000, seed=2)
    events += _mixed_kinds(T0 + 2 * 3_600_000, count=61, seconds=120)
    events += burst("ETH-PERP", T0 + 2 * 3_600_000 + 600_000, count=40, seconds=60, size=9e5)
    scores, alerts = run(events, CascadeEngine(fill_priced={"binance_usdm"}))
    scores_before, alerts_before = run(events, CascadeEngine())
    assert scores == scores_before
    timing = ("id", "status", "score", "updated_at", "total_usd", "events", "exchanges")
    assert [[a[k] for k in timing] for a in alerts] == [
        [a[k] for k in timing] for a in alerts_before
    ]
    assert any(
        a.start_price != b.start_price for a, b in zip(alerts, alerts_before, strict=True)
    ), "the mixed cascade's prices were read from its fills"


def test_short_cascade_says_upside() -> None:
    events = calm("SOL-PERP", 2, per_hour=60, size=2_000, seed=3)
    events += burst("SOL-PERP", T0 + 3_600_000, count=30, seconds=45, size=400_000, side="short")
    _, alerts = run(events, CascadeEngine())
    started = next(a for a in alerts if a.status == "started")
    assert started.side == "short"
    assert "of shorts liquidated" in started.message
    assert "upside momentum" in started.message


def test_score_means_the_same_on_btc_and_a_small_coin() -> None:
    """Multiplying every size of a market by 10,000 changes no score (up to float rounding)."""
    small = calm("TINY-PERP", 4, per_hour=30, size=300, seed=4)
    small += burst("TINY-PERP", T0 + 3 * 3_600_000, count=25, seconds=60, size=40_000)
    big = [("BTC-PERP", s, u * 10_000, p, ts, x) for _, s, u, p, ts, x in small]
    small_scores, _ = run(small, CascadeEngine())
    big_scores, _ = run(big, CascadeEngine())
    same = sum(a == b for a, b in zip(small_scores, big_scores, strict=True))
    assert same >= len(small_scores) - 2
    assert max(small_scores) >= 7


def test_a_lone_liquidation_on_a_quiet_coin_is_not_a_cascade() -> None:
    events = calm("DOGE-PERP", 8, per_hour=2, size=1_000, seed=5)
    events.append(("DOGE-PERP", "long", 500_000.0, 0.1, T0 + 9 * 3_600_000, "bybit"))
    scores, alerts = run(events, CascadeEngine())
    assert scores[-1] <= CascadeConfig().count_gain * 1 + 0.5
    assert alerts == []


def test_one_position_filled_at_one_price_is_not_a_cascade() -> None:
    """Sixty fills of one huge position at one price: big notional, but price did not move."""
    events = calm("ADA-PERP", 3, per_hour=60, size=2_000, seed=7)
    start = T0 + 3 * 3_600_000
    events += [("ADA-PERP", "long", 50_000.0, 100.0, start + i, "bybit") for i in range(60)]
    # The level cap alone (without the price term, which a flat price takes further down).
    config = CascadeConfig(move_gain=0.0)
    scores, alerts = run(events, CascadeEngine(config))
    assert max(scores[-60:]) == config.level_base
    assert alerts == []
    scores, alerts = run(events, CascadeEngine())
    assert max(scores[-60:]) < config.level_base
    assert alerts == []


def _fills(market: str, start: int, prices: list[tuple[float, float]]) -> list[Event]:
    """Forty $100k fills at each (price, seconds after ``start``) level, 10 ms apart."""
    return [
        (market, "long", 100_000.0, price, start + int(at * 1000) + 10 * i, "bybit")
        for price, at in prices
        for i in range(40)
    ]


def test_positions_swept_together_in_the_first_second_are_one_shock() -> None:
    """Three levels hit within the chain's first second (a jump): one shock, however wide."""
    events = calm("ADA-PERP", 3, per_hour=60, size=2_000, seed=7)
    start = T0 + 3 * 3_600_000
    events += _fills("ADA-PERP", start, [(100.0, 0.0), (99.5, 0.3), (99.0, 0.6)])
    scores, alerts = run(events, CascadeEngine())
    assert max(scores[-120:]) == CascadeConfig().level_base
    assert alerts == []


def test_levels_reached_later_make_a_cascade_even_nearer_than_the_last() -> None:
    """A shock, then positions reached 5 s and 12 s later: three levels, a cascade, although
    the third lies between the first two (the forced orders' impact partly reverted)."""
    config = CascadeConfig(move_gain=0.0)  # the levels alone, as with open interest known
    events = calm("ADA-PERP", 3, per_hour=60, size=2_000, seed=7)
    start = T0 + 3 * 3_600_000
    events += _fills("ADA-PERP", start, [(100.0, 0.0), (99.0, 5.0), (99.5, 12.0)])
    scores, alerts = run(events, CascadeEngine(config))
    # By event, not by position: calm()'s last background event comes after the fills.
    at = {(e[3], e[4]): s for e, s in zip(sorted(events, key=lambda e: e[4]), scores, strict=True)}
    second = [s for (price, ts), s in at.items() if price == 99.0 and ts >= start]
    third = [s for (price, ts), s in at.items() if price == 99.5 and ts >= start]
    assert max(second) == config.level_base + config.level_gain  # two levels: 6
    assert min(third) >= config.start_score  # the third level is a cascade at once
    assert [a.status for a in alerts][:1] == ["started"]
    # Within the price tolerance (0.12 %) a later fill is the same level, not a new one.
    events = calm("ADA-PERP", 3, per_hour=60, size=2_000, seed=7)
    events += _fills("ADA-PERP", start, [(100.0, 0.0), (99.0, 5.0), (99.1, 12.0)])
    scores, alerts = run(events, CascadeEngine(config))
    assert max(scores[-120:]) == config.level_base + config.level_gain
    assert alerts == []


def test_fuel_moves_the_score() -> None:
    events = calm("XRP-PERP", 3, per_hour=60, size=1_000, seed=6)
    events += burst("XRP-PERP", T0 + 3 * 3_600_000, count=8, seconds=60, size=3_000)
    plain, _ = run(events, CascadeEngine())
    fuelled = CascadeEngine()
    fuelled.set_fuel("XRP-PERP", "long", 4.0)
    more, _ = run(events, fuelled)
    assert more[-1] == min(10, plain[-1] + 1)
    with pytest.raises(ValueError, match="ratio must be >= 0"):
        fuelled.set_fuel("XRP-PERP", "long", -1.0)


def test_out_of_order_events_are_scored_at_the_latest_time() -> None:
    engine = CascadeEngine()
    engine.observe("BTC-PERP", "long", 1_000.0, 100.0, T0 + 10_000, "okx")
    score = engine.observe("BTC-PERP", "long", 1_000.0, 100.0, T0 + 2_000, "bybit")
    assert 0 <= score <= 10
    assert engine.score("BTC-PERP", "long") == score
    assert engine.score("NOPE-PERP", "short") == 0


def test_config_errors_name_the_field() -> None:
    with pytest.raises(ValueError, match="fast_buckets"):
        CascadeConfig(fast_buckets=40)
    with pytest.raises(ValueError, match="start_score"):
        CascadeConfig(start_score=11)
    with pytest.raises(ValueError, match="move_ref_pct"):
        CascadeConfig(move_ref_pct=0.0)


def test_formatting() -> None:
    assert format_duration(45) == "45 s"
    assert format_duration(252) == "4m 12s"


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), cut=st.floats(0.05, 0.95))
def test_no_look_ahead(seed: int, cut: float) -> None:
    """The score of event i is the same whether or not later events exist."""
    rng = random.Random(seed)
    markets = ["BTC-PERP", "ETH-PERP", "PEPE-PERP"]
    events: list[Event] = []
    t = T0
    for _ in range(600):
        t += int(rng.expovariate(1 / 2_000))
        if rng.random() < 0.02:  # a burst of 10-40 liquidations a few hundred ms apart
            market, side = rng.choice(markets), rng.choice(["long", "short"])
            for _ in range(rng.randint(10, 40)):
                t += rng.randint(50, 800)
                events.append((market, side, rng.lognormvariate(10, 1), 10.0, t, "okx"))
        side = rng.choice(["long", "short"])
        events.append((rng.choice(markets), side, rng.lognormvariate(8, 2), 10.0, t, "bybit"))
    n = int(len(events) * cut)
    full, full_alerts = run(events, CascadeEngine())
    prefix, prefix_alerts = run(events[:n], CascadeEngine())
    assert prefix == full[:n]
    last_ts = events[n - 1][4]
    assert (
        prefix_alerts == [a for a in full_alerts if a.updated_at <= last_ts][: len(prefix_alerts)]
    )


def test_a_market_silent_for_a_year_starts_again_from_the_prior() -> None:
    # Its baseline decays to nothing over the gap; the next event must neither divide by it
    # nor read as a cascade.
    engine = CascadeEngine()
    t0 = 1_760_000_000_000
    engine.observe("BTC-PERP", "long", 1e5, 60_000.0, t0, "bybit")
    year = 365 * 86_400_000
    assert engine.tick(t0 + year) == []
    assert engine.observe("BTC-PERP", "long", 1e5, 60_000.0, t0 + year + 5, "bybit") == 0


@pytest.mark.parametrize("first_usd", [10.0, 100_000.0])
def test_the_baseline_forgets_the_first_event_and_learns_a_sparse_market(first_usd: float) -> None:
    # A market that liquidates a few times an hour has an event in far fewer than one 5 s
    # bucket in baseline_clip: its baseline must still learn that pace and size. (Clipping each
    # lone event at 8x the baseline once made the baseline decay, so the yardstick stayed three
    # times the first event's size for ever: a day later, ordinary events scored as a cascade
    # after a tiny first one, and nothing could after a huge one.)
    config = CascadeConfig(move_gain=0.0)
    engine = CascadeEngine(config)
    engine.observe("AUDIO-PERP", "long", first_usd, 100.0, T0 - 1_000, "bybit")
    run(calm("AUDIO-PERP", 24, per_hour=4, size=5_000, seed=3), engine)
    start = T0 + 24 * 3_600_000 + 60_000
    scores, _ = run(burst("AUDIO-PERP", start, count=30, seconds=60, size=5_000), engine)
    # 30 ordinary events in a minute against ~4 an hour: r ~ 7, 0.7 * log2(r) ~ 2.
    assert 1 <= max(scores) <= 3


def test_a_burst_is_not_its_own_yardstick() -> None:
    """A market first seen just before a burst (a server or a recording that starts inside
    one): its liquidations feed the baseline only once they leave the 90 s window, so the
    burst is judged against what came before it. (Fed as each 5 s bucket completed, a new
    market's first burst became most of its own yardstick within seconds: this one alerted
    at 58 s instead of 34 s; real recordings replayed from inside a wave showed the same.)"""
    engine = CascadeEngine()
    engine.observe("RARE-PERP", "short", 200.0, 10.0, T0 - 30_000, "binance_usdm")
    events = [
        ("RARE-PERP", "short", 2_000.0, 10.0 * 1.0004 ** (i + 1), T0 + i * 2_000, "binance_usdm")
        for i in range(45)
    ]
    _, alerts = run(events, engine)
    started = [a for a in alerts if a.status == "started"]
    assert started
    assert started[0].updated_at - T0 <= 40_000


def test_open_interest_memory_keeps_the_level_before_a_fall() -> None:
    """With oi_memory_s, a fall of open interest (a crash's own liquidations) lowers the size
    term's yardstick only over that time; without it the yardstick is the latest level."""
    config = CascadeConfig(oi_gain=1.0, oi_ref=0.003, move_gain=0.0)
    window = 8 * 3_000
    deep_oi, thin_oi = window / 0.003 * 8, window / 0.003 / 8
    events = calm("XRP-PERP", 15, per_hour=60, size=1_000, seed=6)

    def hours(lo: float, hi: float) -> list[Event]:
        return [e for e in events if T0 + lo * 3_600_000 <= e[4] < T0 + hi * 3_600_000]

    def fallen(memory_s: float) -> CascadeEngine:
        """Three calm hours at the deep level, then the open interest falls to the thin one."""
        engine = CascadeEngine(replace(config, oi_memory_s=memory_s))
        run(hours(0, 3), engine)
        engine.set_open_interest("XRP-PERP", deep_oi)
        engine.set_open_interest("XRP-PERP", thin_oi)
        return engine

    def last_score(engine: CascadeEngine, at_h: float) -> int:
        cascade = burst("XRP-PERP", T0 + int(at_h * 3_600_000), count=8, seconds=60, size=3_000)
        return run(cascade, engine)[0][-1]

    latest, held = last_score(fallen(0.0), 3), last_score(fallen(3_600.0), 3)
    # Against the thin level the window is 8x oi_ref (+3, up to one level's cap); against the
    # deep level it held, 1/8 (-3).
    assert latest == config.level_base
    assert held <= latest - 3
    # Refreshed every hour for 12 h at the low level, the yardstick has followed it down.
    engine = fallen(3_600.0)
    for hour in range(3, 15):
        run(hours(hour, hour + 1), engine)
        engine.set_open_interest("XRP-PERP", thin_oi)
    assert last_score(engine, 15) == latest


def test_open_interest_scales_the_score_to_the_market() -> None:
    """The same burst is a cascade on a thin market and noise on a deep one."""
    # Without the price term, so that open interest unknown means no size term at all.
    config = CascadeConfig(oi_gain=1.0, oi_ref=0.003, move_gain=0.0)
    events = calm("XRP-PERP", 3, per_hour=60, size=1_000, seed=6)
    events += burst("XRP-PERP", T0 + 3 * 3_600_000, count=8, seconds=60, size=3_000)
    plain, _ = run(events, CascadeEngine(config))  # open interest unknown: no term
    window = 8 * 3_000
    thin, deep = CascadeEngine(config), CascadeEngine(config)
    # Split over two instruments: the engine sums them.
    thin.set_open_interest("XRP-PERP", window / 0.003 / 8 / 2, "okx:XRP-USDT-SWAP")
    thin.set_open_interest("XRP-PERP", window / 0.003 / 8 / 2, "bybit:XRPUSDT")
    deep.set_open_interest("XRP-PERP", window / 0.003 * 8)
    thin_scores, _ = run(events, thin)
    deep_scores, deep_alerts = run(events, deep)
    # The window is 8x oi_ref of the thin market's open interest (+3 points, up to the cap of
    # one price level) and 1/8 of the deep one's (-3).
    assert 0 < plain[-1] < config.level_base
    assert thin_scores[-1] == min(plain[-1] + 3, config.level_base)
    assert deep_scores[-1] == max(0, plain[-1] - 3)
    assert not [a for a in deep_alerts if a.status == "started"]
    # Forgetting an instrument leaves the other; forgetting both removes the term.
    half, one = CascadeEngine(config), CascadeEngine(config)
    half.set_open_interest("XRP-PERP", 1e6, "okx:XRP-USDT-SWAP")
    half.set_open_interest("XRP-PERP", 3e6, "bybit:XRPUSDT")
    half.set_open_interest("XRP-PERP", 0.0, "okx:XRP-USDT-SWAP")
    one.set_open_interest("XRP-PERP", 3e6)
    assert run(events, half)[0] == run(events, one)[0]
    none = CascadeEngine(config)
    none.set_open_interest("XRP-PERP", 3e6, "bybit:XRPUSDT")
    none.set_open_interest("XRP-PERP", 0.0, "bybit:XRPUSDT")
    assert run(events, none)[0] == plain
    with pytest.raises(ValueError, match="usd must be a finite number >= 0"):
        thin.set_open_interest("XRP-PERP", float("nan"))


def test_a_market_known_only_by_open_interest_is_forgotten_with_its_last_listing() -> None:
    # Live, every listing a poller reports gets engine state through its open interest, and
    # an expired future or a delisted contract was told 0 (the heatmap retires it after a
    # day without a snapshot) but kept its two market states, its empty book of listings and
    # its yardstick for good: 60 days of daily expiries left 60 markets in the engine and in
    # every state it saves.
    engine = CascadeEngine(CascadeConfig(oi_memory_s=3600.0))
    for day in range(60):
        future = f"BTC-{20260101 + day}"
        engine.set_open_interest(future, 6e5, f"deribit:{future}")
        engine.set_open_interest(future, 0.0, f"deribit:{future}")
    state = engine.export_state()
    assert (state["markets"], state["oi"], state["oi_yard"]) == ({}, {}, {})
    # A market with events keeps what they taught it (its baseline): only its book goes.
    engine.set_open_interest("ETH-20260301", 6e5, "deribit:ETH-1MAR26")
    engine.observe("ETH-20260301", "long", 50_000.0, 2_500.0, 1_000, "deribit")
    engine.set_open_interest("ETH-20260301", 0.0, "deribit:ETH-1MAR26")
    state = engine.export_state()
    assert list(state["markets"]) == ["ETH-20260301"]  # type: ignore[call-overload]
    assert state["oi"] == {}
    # Told again, it starts as a market never seen.
    again = CascadeEngine(CascadeConfig(oi_memory_s=3600.0))
    for told in (engine, again):
        told.set_open_interest("BTC-20260101", 2e5, "deribit:BTC-1JAN26")
    told_again = [e.export_state()["markets"] for e in (engine, again)]
    assert told_again[0]["BTC-20260101"] == told_again[1]["BTC-20260101"]  # type: ignore[index]


def test_retire_forgets_silent_markets_that_nothing_holds() -> None:
    # The server retires a market a week after its last event (pipeline.MARKET_RETIRE_MS):
    # a market with open interest (a listing alive) or a cascade open keeps its states.
    engine = CascadeEngine()
    events = burst("HOT-PERP", T0, count=40, seconds=60, size=20_000_000)
    _, alerts = run(calm("HOT-PERP", 6, per_hour=60, size=20_000, seed=1) + events, engine)
    hot_start = T0 + 6 * 3_600_000
    _, alerts = run(burst("HOT-PERP", hot_start, count=40, seconds=30, size=50_000_000), engine)
    assert engine.active(), alerts  # its cascade still open: nothing ticked it out
    engine.observe("GONE-PERP", "long", 10_000.0, 5.0, T0, "bybit")
    engine.observe("LISTED-PERP", "short", 10_000.0, 5.0, T0, "bybit")
    engine.set_open_interest("LISTED-PERP", 1e7, "bybit:LISTEDUSDT")
    later = hot_start + 3_600_000  # after every market's last event
    assert engine.retire(later) == 1
    assert sorted(engine.export_state()["markets"]) == ["HOT-PERP", "LISTED-PERP"]  # type: ignore[call-overload]
    engine.set_open_interest("LISTED-PERP", 0.0, "bybit:LISTEDUSDT")
    assert engine.retire(T0) == 0  # an event at the time itself is not before it
    assert engine.retire(later) == 1  # its listing gone, LISTED goes
    # Liquidated again, a retired market starts as one never seen.
    again = CascadeEngine()
    for told in (engine, again):
        told.observe("GONE-PERP", "long", 10_000.0, 5.0, hot_start, "bybit")
    states = [e.export_state()["markets"]["GONE-PERP"] for e in (engine, again)]  # type: ignore[index]
    assert states[0] == states[1]


def test_without_open_interest_the_price_move_sizes_the_burst() -> None:
    """Open interest unknown: the same liquidations are a cascade when they push the price
    their way (longs' forced sales down) and not when the price rises through them; once open
    interest is known the price term is off."""
    events = calm("XRP-PERP", 3, per_hour=60, size=1_000, seed=6)
    down = burst("XRP-PERP", T0 + 3 * 3_600_000, count=20, seconds=40, size=3_000)
    falling = events + down
    rising = events + [(m, s, u, 200.0 - p, t, x) for m, s, u, p, t, x in down]
    down_scores, down_alerts = run(falling, CascadeEngine())
    up_scores, up_alerts = run(rising, CascadeEngine())
    flat_scores, _ = run(falling, CascadeEngine(CascadeConfig(move_gain=0.0)))
    assert max(down_scores[-20:]) >= CascadeConfig().start_score > max(flat_scores[-20:])
    assert [a.status for a in down_alerts][:1] == ["started"]
    assert max(up_scores[-20:]) < max(flat_scores[-20:])
    assert not [a for a in up_alerts if a.status == "started"]
    with_oi, without_term = CascadeEngine(), CascadeEngine(CascadeConfig(move_gain=0.0))
    for engine in (with_oi, without_term):
        engine.set_open_interest("XRP-PERP", 2e7)
    assert run(falling, with_oi)[0] == run(falling, without_term)[0]


def test_open_interest_is_ignored_when_its_gain_is_zero() -> None:
    events = calm("XRP-PERP", 2, per_hour=60, size=1_000, seed=8)
    config = CascadeConfig(oi_gain=0.0)
    engine = CascadeEngine(config)
    engine.set_open_interest("XRP-PERP", 1.0)  # absurdly small: would dominate if used
    assert run(events, engine)[0] == run(events, CascadeEngine(config))[0]


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), cut=st.floats(0.05, 0.95))
def test_no_look_ahead_with_open_interest(seed: int, cut: float) -> None:
    """With snapshots' open interest interleaved in time order, the score of event i does not
    depend on later events or later snapshots."""
    rng = random.Random(seed)
    markets = ["BTC-PERP", "ETH-PERP", "PEPE-PERP"]
    stream: list[tuple[str, Event | tuple[str, float]]] = []
    t = T0
    next_snapshot = T0 + 60_000
    for _ in range(500):
        t += int(rng.expovariate(1 / 2_000))
        while next_snapshot <= t:
            for market in markets:
                stream.append(("oi", (market, rng.lognormvariate(17, 2))))
            next_snapshot += 60_000
        count = rng.randint(10, 40) if rng.random() < 0.03 else 1
        market, side = rng.choice(markets), rng.choice(["long", "short"])
        for _ in range(count):
            t += rng.randint(50, 800)
            stream.append(("event", (market, side, rng.lognormvariate(10, 2), 10.0, t, "okx")))

    def scores(items: list[tuple[str, Event | tuple[str, float]]]) -> list[int]:
        engine = CascadeEngine(CascadeConfig(oi_gain=1.0))
        out: list[int] = []
        for kind, item in items:
            if kind == "oi":
                market, usd = item  # type: ignore[misc]
                engine.set_open_interest(market, usd)
            else:
                market, side, size, price, ts, exchange = item  # type: ignore[misc]
                engine.tick(ts // 1000 * 1000)
                out.append(engine.observe(market, side, size, price, ts, exchange))
        return out

    n = int(len(stream) * cut)
    full = scores(stream)
    prefix = scores(stream[:n])
    assert prefix == full[: len(prefix)]
    assert len(set(full)) > 1  # the stream does exercise the score


def test_an_active_cascade_whose_score_fell_says_it_is_fading() -> None:
    """A cascade stays active until exhausted, while its score may fall to 0: its updates
    then said "momentum likely to continue" at 0/10 (seen on a served DOGS-PERP)."""
    from purpleflea.engine.cascade import alert_message

    common = {
        "window_usd": 12_000.0,
        "window_s": 90,
        "total_usd": 900_000.0,
        "events": 40,
        "duration_s": 200.0,
        "price_move_pct": -1.2,
        "peak_score": 8,
        "start_score": 7,
    }
    fading = alert_message("updated", "DOGS-PERP", "long", score=0, **common)
    assert fading.endswith("cascade score 0/10 (peak 8), downside momentum fading.")
    running = alert_message("updated", "DOGS-PERP", "long", score=7, **common)
    assert running.endswith("cascade score 7/10, downside momentum likely to continue.")


def test_an_exhausted_cascade_writes_its_count_as_every_other_count_is_written() -> None:
    """The dashboard's banner read "... liquidated in 1607 liquidations" above its own detail
    line "1,607 liquidations" (a served BNB-PERP crash)."""
    from purpleflea.engine.cascade import alert_message

    line = alert_message(
        "exhausted",
        "BNB-PERP",
        "long",
        score=2,
        window_usd=1e5,
        window_s=90,
        total_usd=9.93e6,
        events=1607,
        duration_s=209.0,
        price_move_pct=-2.98,
        peak_score=8,
        start_score=7,
    )
    assert line == (
        "BNB-PERP: long liquidation cascade exhausted after 3m 29s: $9.93M of longs liquidated "
        "in 1,607 liquidations, price -2.98%."
    )
