"""The real-data goals' wave definitions (bench/cascade_real_waves.py) on hand-made minute
series: the market-relative bar reads only the minutes before, counts distinct seconds, falls
back to the pooled bar, and heavy minutes at most 5 minutes apart are one wave."""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "bench"))

import cascade_real_waves as cw  # noqa: E402
from cascade_real import Row  # noqa: E402

BAR = 30_468.0
T0 = 29_000_000 * 60_000  # a whole minute


def _minute(
    minute: int, usd: float, seconds: int = 3, events: int = 3, side: str = "long"
) -> list[Row]:
    """``events`` liquidations of ``usd`` in all, spread over ``seconds`` distinct seconds of
    ``minute`` (minutes after T0)."""
    return [
        Row("X-PERP", side, usd / events, 100.0, T0 + minute * 60_000 + (i % seconds) * 1_000)
        for i in range(events)
    ]


def _series(*minutes: list[Row]) -> list[Row]:
    return sorted((r for m in minutes for r in m), key=lambda r: r.ts)


def _heavy(rows: list[Row]) -> set[int]:
    return {minute - T0 // 60_000 for _, _, minute in cw.over_relative_bar(rows, BAR)}


def test_the_bar_is_k_times_the_trailing_median_and_never_below_the_pooled_bar() -> None:
    history = [_minute(m, 5_000.0, seconds=1, events=1) for m in range(10)]  # median $5k
    # 10 x $5k = $50k: $45k is not heavy, $55k is.
    assert _heavy(_series(*history, _minute(20, 45_000.0))) == set()
    assert _heavy(_series(*history, _minute(20, 55_000.0))) == {20}
    # A small market (median $500): the bar stays the pooled one, never 10 x $500.
    small = [_minute(m, 500.0, seconds=1, events=1) for m in range(10)]
    assert _heavy(_series(*small, _minute(20, 20_000.0))) == set()
    assert _heavy(_series(*small, _minute(20, 31_000.0))) == {20}
    # Four active minutes are too few to judge by: the pooled bar alone.
    assert _heavy(_series(*history[:4], _minute(20, 45_000.0))) == {20}
    assert cw.relative_bar([5_000.0] * 4, BAR) == BAR
    assert cw.relative_bar([5_000.0] * 5, BAR) == 50_000.0


def test_a_minute_is_judged_by_the_minutes_before_it_only() -> None:
    history = [_minute(m, 5_000.0, seconds=1, events=1) for m in range(10)]
    spike = _minute(20, 55_000.0)
    before = _heavy(_series(*history, spike))
    # Later, a busy hour of $100k minutes: a median over the whole series (or one centred on
    # the minute) would put the bar at $1M and take minute 20 off; trailing, it stays heavy.
    later = [_minute(m, 100_000.0, seconds=1, events=1) for m in range(21, 60)]
    after = _heavy(_series(*history, spike, *later))
    assert before == {20}
    assert 20 in after
    # The window is the 60 minutes before: at minute 65 it holds minutes 5-9 (five, bar $50k),
    # at 66 only four, so the pooled bar judges and $45k is heavy.
    assert _heavy(_series(*history, _minute(65, 45_000.0))) == set()
    assert _heavy(_series(*history, _minute(66, 45_000.0))) == {66}


def test_three_distinct_seconds_not_three_events() -> None:
    # One order's fills: $100k in 6 events within one second, then within two seconds.
    assert _heavy(_series(_minute(0, 100_000.0, seconds=1, events=6))) == set()
    assert _heavy(_series(_minute(0, 100_000.0, seconds=2, events=6))) == set()
    assert _heavy(_series(_minute(0, 100_000.0, seconds=3, events=3))) == {0}
    # The pooled definition, the issue's, counts events.
    assert len(cw.over_bar(_series(_minute(0, 100_000.0, seconds=1, events=6)), BAR)) == 1


def test_heavy_minutes_at_most_five_minutes_apart_are_one_wave() -> None:
    rows = _series(
        _minute(0, 40_000.0),
        _minute(5, 40_000.0),  # 5 minutes after: the same wave
        _minute(11, 40_000.0),  # 6 minutes after: a new one
        _minute(12, 40_000.0, side="short"),  # the other side: its own wave
    )
    found = cw.waves(rows, BAR, "relative")
    assert [(w.side, w.heavy_minutes, round(w.usd)) for w in found] == [
        ("long", 2, 80_000),
        ("long", 1, 40_000),
        ("short", 1, 40_000),
    ]
    first = found[0]
    assert first.first_ts == T0
    assert first.end_ts == T0 + 5 * 60_000 + 2_000
    assert cw.waves(rows, BAR, "pooled") == found  # the same join for both definitions
