"""The uptime ledger: per exchange and hour, uptime, gaps and the throttle's pressure."""

from __future__ import annotations

from purpleflea.ingest.uptime import HOUR_MS, HourRow, Ledger, split_hours

H = 1_700_000_000_000 - 1_700_000_000_000 % HOUR_MS  # an hour's start


def test_intervals_are_cut_at_hour_boundaries() -> None:
    assert list(split_hours(H + 10, H + HOUR_MS + 5)) == [(H, HOUR_MS - 10), (H + HOUR_MS, 5)]
    assert list(split_hours(H, H)) == []


def test_uptime_counts_connected_time_per_hour_across_a_boundary() -> None:
    ledger = Ledger()
    ledger.watch("okx", "okx", H)
    ledger.up("okx", "okx", H + 1_000)
    ledger.down("okx", "okx", H + HOUR_MS + 2_000, "closed")
    rows, _ = ledger.drain(H + HOUR_MS + 3_000)
    assert rows == [
        HourRow(exchange="okx", hour_ms=H, up_ms=HOUR_MS - 1_000, watched_ms=HOUR_MS),
        HourRow(exchange="okx", hour_ms=H + HOUR_MS, up_ms=2_000, watched_ms=3_000),
    ]
    # Drained rows are deltas: the next drain adds only what came after.
    rows, _ = ledger.drain(H + HOUR_MS + 4_000)
    assert rows == [HourRow(exchange="okx", hour_ms=H + HOUR_MS, up_ms=0, watched_ms=1_000)]


def test_a_gap_starts_at_the_last_frame_and_ends_at_the_reconnect() -> None:
    ledger = Ledger()
    assert ledger.down("bybit_linear", "bybit", H, "unreachable") is None  # never up: no gap
    ledger.up("bybit_linear", "bybit", H + 100)
    ledger.frame("bybit_linear", H + 500)
    opened = ledger.down("bybit_linear", "bybit", H + 90_500, "silent")
    assert opened is not None
    assert (opened.start_ms, opened.end_ms, opened.reason) == (H + 500, None, "silent")
    # Retries while down extend the same gap.
    assert ledger.down("bybit_linear", "bybit", H + 91_000, "http_503") is None
    closed = ledger.up("bybit_linear", "bybit", H + 95_000)
    assert closed is not None
    assert (closed.id, closed.start_ms, closed.end_ms) == (opened.id, H + 500, H + 95_000)
    assert closed.repair == "pending"
    _, gaps = ledger.drain(H + 96_000)
    assert gaps == [closed]
    assert ledger.drain(H + 97_000)[1] == []


def test_pressure_counts_distinct_symbol_seconds_of_snapshot_venues_only() -> None:
    ledger = Ledger(snapshot=["binance_usdm"])
    ledger.up("binance_usdm", "binance_usdm", H)
    for symbol, ts in (("BTCUSDT", H + 10), ("BTCUSDT", H + 900), ("BTCUSDT", H + 1_000),
                       ("ETHUSDT", H + 10)):  # fmt: skip
        ledger.event("binance_usdm", symbol, ts)
    ledger.event("bybit", "BTCUSDT", H + 10)
    rows, _ = ledger.drain(H + 2_000)
    expected = HourRow(
        exchange="binance_usdm",
        hour_ms=H,
        up_ms=2_000,
        watched_ms=2_000,
        symbol_seconds=3,
        symbols=2,
    )
    assert rows == [expected]
    ledger.event("binance_usdm", "BTCUSDT", H + 1_500)  # a second already counted
    rows, _ = ledger.drain(H + 2_000)
    assert rows == []


def test_events_stamped_in_distinct_future_hours_do_not_pile_up_hours() -> None:
    # A venue's clock (or a bug) far ahead: each event in an hour of its own. Hours are
    # forgotten only once past, so every future one was held until its time came (up to
    # the year 2100 a timestamp may name): a stream of them grew the ledger without bound.
    ledger = Ledger(snapshot=["binance_usdm"])
    ledger.up("binance_usdm", "binance_usdm", H)
    for n in range(1, 2_001):
        ledger.event("binance_usdm", "BTCUSDT", H + 10 + n * 10 * HOUR_MS)
    rows, _ = ledger.drain(H + 2_000)
    assert len(ledger._hours) <= 2  # this hour and the next, whatever the events said
    # Each is still counted once, in the latest hour the ledger will hold.
    assert sum(row.symbol_seconds or 0 for row in rows) == 2_000
    assert {row.hour_ms for row in rows} == {H, H + HOUR_MS}
