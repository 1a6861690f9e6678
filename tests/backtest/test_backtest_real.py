"""The backtest on a real recording: every fill's price is one the recording printed, and the
report says when that print was old (a recorder's gap, a quiet market)."""

from __future__ import annotations

import bisect
import csv

import msgspec

from purpleflea.backtest import Playbook, run_backtest
from purpleflea.backtest.report import STALE_FILL_MS
from purpleflea.history_io import parse_recorder_csv
from tests.conftest import shared_dir

REAL = shared_dir() / "data" / "real"
RIFTFERN = REAL / "riftfern_data-streams" / "binance.csv"


def test_fills_use_printed_prices_and_the_report_counts_the_stale_ones() -> None:
    with RIFTFERN.open() as handle:
        parsed = parse_recorder_csv("binance-csv", handle, source=str(RIFTFERN))
    events = [
        msgspec.structs.replace(e, seq=n)
        for n, e in enumerate(sorted(parsed.events, key=lambda e: e.ts), 1)
    ]
    report = run_backtest(events, Playbook(threshold=5, flip=True))
    assert report.trades

    # Each market's prints from the raw file (the fill price ap, in the symbol's own units:
    # the 1000PEPE row's price is per 1000 PEPE), by time; the market from our parse.
    market_of = {e.symbol: e.market for e in events}
    prints: dict[str, list[tuple[int, float]]] = {}
    with RIFTFERN.open() as handle:
        for row in csv.reader(handle):
            symbol = row[0] if row[0].endswith(("USDT", "USDC")) else f"{row[0]}USDT"
            unit = 1000.0 if row[0].startswith("1000") else 1.0
            prints.setdefault(market_of[symbol], []).append((int(row[10]), float(row[6]) / unit))
    for series in prints.values():
        series.sort()

    slippage = 5 / 1e4
    stale = 0
    oldest = 0
    for trade in report.trades:
        for fill_ts, price_ts, price, sign in (
            (trade.entry_ts, trade.entry_price_ts, trade.entry_price, trade.direction),
            (trade.exit_ts, trade.exit_price_ts, trade.exit_price, -trade.direction),
        ):
            series = prints[trade.market]
            # The newest print at or before the fill: its time is the fill's price time, and
            # its price (with the slippage) the fill's price.
            at = bisect.bisect_right(series, (fill_ts, float("inf"))) - 1
            printed_ts, printed = series[at]
            assert price_ts == printed_ts, trade
            assert abs(price / (1 + sign * slippage) - printed) <= 1e-9 * printed, trade
            age = fill_ts - printed_ts
            stale += age > STALE_FILL_MS
            oldest = max(oldest, age)
    # The recording stops for hours (15:55 -> 21:38 -> next day 20:16): a position's 30-minute
    # guard expires in the gap and fills at the market's last print before it.
    assert stale > 0
    assert report.metrics.stale_fills == stale
    assert report.metrics.max_fill_price_age_ms == oldest
