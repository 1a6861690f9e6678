"""Backtests: the playbook trades cascades with costs; reports; user strategies; the command."""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import msgspec
import pytest

from purpleflea.backtest import (
    Broker,
    Costs,
    Playbook,
    load_strategy,
    run_backtest,
    start,
    store_pages,
)
from purpleflea.backtest.broker import DEFAULT_LATENCY_MS, BrokerError, Trade
from purpleflea.backtest.report import (
    DAY_MS,
    Report,
    compute_metrics,
    sharpe_text,
    write_report,
)
from purpleflea.clock import utc_iso
from purpleflea.model import CascadeAlert, Liquidation
from tests.conftest import REPO

T0 = 1_700_000_000_000


def event(seq: int, ts: int, side: str, size: float, price: float, market: str) -> Liquidation:
    return Liquidation(
        id=f"e{seq}",
        seq=seq,
        exchange="sim",
        symbol=market.replace("-PERP", "USDT"),
        market=market,
        side=side,  # type: ignore[arg-type]
        price=price,
        quantity=size / price,
        size_usd=size,
        ts=ts,
        received_at=ts,
        coverage="complete",
    )


def history(market: str = "ETH-PERP") -> list[Liquidation]:
    """Two hours of calm liquidations at 2000, then a long cascade walking price to 1800,
    then calm again at 1750 (after the cascade the price keeps a lower level)."""
    events: list[Liquidation] = []
    ts = T0
    for i in range(240):  # one every 30 s, alternating sides
        ts += 30_000
        events.append(event(len(events) + 1, ts, "long" if i % 2 else "short", 5_000, 2000, market))
    for i in range(50):  # 50 long liquidations in 50 s, price falling 2000 -> 1800
        ts += 1_000
        events.append(event(len(events) + 1, ts, "long", 400_000, 2000 - 4 * (i + 1), market))
    for i in range(60):
        ts += 30_000
        events.append(event(len(events) + 1, ts, "long" if i % 2 else "short", 5_000, 1750, market))
    return events


def test_playbook_shorts_a_long_cascade_and_exits_on_exhaustion() -> None:
    report = run_backtest(history(), Playbook(threshold=7), costs=Costs(fee_bps=0, slippage_bps=0))
    assert report.metrics.trades == 1
    trade = report.trades[0]
    assert trade.direction == -1
    assert trade.reason == "exhausted"
    assert trade.exit_price < trade.entry_price
    assert trade.pnl_usd > 0
    assert report.metrics.hit_rate == 1.0
    assert report.metrics.alerts >= 2  # started ... exhausted


def test_costs_are_charged_on_both_fills() -> None:
    free = run_backtest(history(), Playbook(), costs=Costs(fee_bps=0, slippage_bps=0))
    paid = run_backtest(history(), Playbook(), costs=Costs(fee_bps=10, slippage_bps=20))
    assert paid.trades[0].fees_usd == pytest.approx(
        10_000 * 10 / 1e4 + paid.trades[0].exit_price * (10_000 / paid.trades[0].entry_price) * 1e-3
    )
    assert paid.metrics.pnl_usd < free.metrics.pnl_usd - 20  # fees alone are ~$20


def test_flip_opens_the_bounce_trade() -> None:
    report = run_backtest(history(), Playbook(flip=True), costs=Costs(fee_bps=0, slippage_bps=0))
    assert [t.direction for t in report.trades] == [-1, 1]
    assert report.trades[1].reason in {"flip done", "end of data"}


def test_threshold_above_every_score_trades_nothing() -> None:
    report = run_backtest(history(), Playbook(threshold=11))
    assert report.metrics.trades == 0
    assert report.metrics.pnl_usd == 0


class Recorder:
    """A user strategy: records what it is shown."""

    def __init__(self) -> None:
        self.scores: list[int] = []
        self.alerts: list[CascadeAlert] = []

    def on_event(self, event: Liquidation, score: int, broker: Broker) -> None:
        self.scores.append(score)

    def on_cascade(self, alert: CascadeAlert, broker: Broker) -> None:
        self.alerts.append(alert)


def test_user_strategy_sees_every_event_and_alert() -> None:
    recorder = Recorder()
    report = run_backtest(history(), recorder)
    assert len(recorder.scores) == len(history())
    assert max(recorder.scores) >= 7
    assert recorder.alerts[0].status == "started"
    assert recorder.alerts[-1].status == "exhausted"
    assert report.metrics.events == len(history())


def test_load_strategy_errors_name_the_problem() -> None:
    assert isinstance(load_strategy("tests.backtest.test_backtest:Recorder"), Recorder)
    with pytest.raises(ValueError, match="expected 'module:Class'"):
        load_strategy("nocolon")
    with pytest.raises(ValueError, match="cannot import"):
        load_strategy("no_such_module_xyz:Thing")
    with pytest.raises(ValueError, match="needs on_event and on_cascade"):
        load_strategy("pathlib:PurePath")


def test_report_files(tmp_path: Path) -> None:
    report = run_backtest(history(), Playbook(flip=True), params={"threshold": 7})
    paths = write_report(report, tmp_path)
    data = json.loads(paths["json"].read_text())
    assert data["metrics"]["trades"] == 2
    assert data["params"] == {"threshold": 7}
    assert paths["png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    page = paths["html"].read_text()
    assert "data:image/png;base64," in page
    assert "Hit rate" in page
    # Trade times as a reader reads them, not 13-digit ms (report.json keeps the ms).
    trade = report.trades[0]
    assert f"<td>{utc_iso(trade.entry_ts)}</td><td>{utc_iso(trade.exit_ts)}</td>" in page
    assert data["trades"][0]["entry_ts"] == trade.entry_ts


async def test_command_reads_the_store_in_pages(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from purpleflea.commands import backtest as command
    from purpleflea.store.sqlite import SQLiteStore

    db = tmp_path / "history.sqlite"
    store = SQLiteStore(db)
    store.append_now(history())
    pages = [len(page) async for page in store_pages(store, page=100)]
    assert pages == [100, 100, 100, 50]
    await store.close()

    import argparse

    parser = argparse.ArgumentParser()
    command.register(parser.add_subparsers())
    out = tmp_path / "out"
    args = parser.parse_args(["backtest", "--store", str(db), "--out", str(out), "--page", "64"])
    # run() uses asyncio.run; call it from a worker thread since this test has a loop.
    import asyncio

    status = await asyncio.to_thread(args.run, args)
    assert status == 0
    data = json.loads((out / "report.json").read_text())
    assert data["metrics"]["events"] == len(history())
    assert data["metrics"]["trades"] == 1
    assert data["params"]["latency_ms"] == DEFAULT_LATENCY_MS  # the command's default is the API's
    # Three hours of history: the summary says why there is no Sharpe ratio.
    said = capsys.readouterr()
    assert "Sharpe n/a (the history spans under 2 days" in said.out
    # No open interest in the store (as after `purpleflea import`): the score has no size term
    # and alerts far more often; a one-day import gave 1,387 alerts instead of 16, unexplained.
    assert data["params"]["open_interest_rows"] == 0
    assert f"backtest: {db} holds no open interest (an imported history" in said.err

    missing = parser.parse_args(["backtest", "--store", str(tmp_path / "none.sqlite")])
    assert missing.run(missing) == 2
    negative = parser.parse_args(["backtest", "--store", str(db), "--latency-ms", "-5"])
    assert negative.run(negative) == 2
    assert "backtest: --latency-ms must be >= 0, got -5" in capsys.readouterr().err


def test_sharpe_n_a_always_says_why() -> None:
    metrics = run_backtest(history(), Playbook(), params={}).metrics
    assert metrics.sharpe is None
    assert sharpe_text(metrics) == (
        "n/a (the history spans under 2 days: no daily returns to compare)"
    )
    week = msgspec.structs.replace(metrics, end_ts=metrics.start_ts + 7 * DAY_MS)
    assert sharpe_text(msgspec.structs.replace(week, trades=0)) == (
        "n/a (no trades: daily returns are all zero)"
    )
    assert sharpe_text(msgspec.structs.replace(week, initial_equity=0.0)).startswith(
        "n/a (no initial equity"
    )
    assert sharpe_text(week) == "n/a (daily returns do not vary)"
    assert sharpe_text(msgspec.structs.replace(week, sharpe=1.837)) == "1.84"


def _held(exit_ts: int, pnl: float) -> Trade:
    """A minute-long ETH-PERP trade closing at ``exit_ts`` with ``pnl``, no fees."""
    return Trade(
        market="ETH-PERP",
        direction=1,
        entry_ts=exit_ts - 60_000,
        exit_ts=exit_ts,
        entry_price=2000.0,
        exit_price=2000.0,
        notional_usd=10_000.0,
        fees_usd=0.0,
        pnl_usd=pnl,
        reason="held",
    )


def test_no_sharpe_under_two_days_even_across_two_calendar_days() -> None:
    # A store of `sim --days 1` and 17 h of `serve` spans 1.7 days: the summary said
    # "Sharpe 73.12" from two daily returns, one of them a partial day.
    trades = [_held(T0 + 3_600_000, 50.0), _held(T0 + DAY_MS + 3_600_000, 20.0)]
    short = compute_metrics(
        trades, initial_equity=1e5, start_ts=T0, end_ts=T0 + DAY_MS * 17 // 10, events=2, alerts=0
    )
    assert short.sharpe is None
    assert sharpe_text(short).startswith("n/a (the history spans under 2 days")
    two = compute_metrics(
        trades, initial_equity=1e5, start_ts=T0, end_ts=T0 + 2 * DAY_MS, events=2, alerts=0
    )
    assert two.sharpe is not None


def test_the_drawdown_percentage_is_the_largest_share_not_the_largest_dollars_share() -> None:
    # Equity 100k -> 50k (a 50 % fall), then up to 1M -> 900k ($100k, 10 %): the report said
    # "max drawdown $100,000 (10.00 %)", hiding the fall that halved the account.
    pnls = [-50_000.0, 950_000.0, -100_000.0]
    trades = [_held(T0 + (i + 1) * 3_600_000, pnl) for i, pnl in enumerate(pnls)]
    metrics = compute_metrics(
        trades, initial_equity=1e5, start_ts=T0, end_ts=T0 + DAY_MS, events=3, alerts=0
    )
    assert metrics.max_drawdown_usd == 100_000.0
    assert metrics.max_drawdown_pct == 50.0


def test_help_is_plain_text_and_shows_every_default(capsys: pytest.CaptureFixture[str]) -> None:
    from purpleflea import cli

    with pytest.raises(SystemExit):
        cli.main(["backtest", "--help"])
    text = capsys.readouterr().out
    assert "``" not in text
    options = text.split("options:", 1)[1]
    # One entry per option (continuation lines folded in); each but --help names its default.
    entries = re.split(r"\n  (?=-)", options.strip())
    assert len(entries) == 14  # --data-dir beside --store, as every other command
    assert all("default" in entry for entry in entries if not entry.startswith("-h"))
    assert "(default 7)" in text


def test_the_default_report_folder_is_git_ignored() -> None:
    from purpleflea.commands import backtest as command

    parser = argparse.ArgumentParser()
    command.register(parser.add_subparsers())
    out = parser.parse_args(["backtest"]).out
    ignored = (REPO / ".gitignore").read_text().splitlines()
    assert f"/{out}/" in ignored


def test_the_broker_is_marked_at_fill_prices_not_bankruptcy_prices() -> None:
    # OKX's bkPx of a long sits ~0.5 % under the market: a strategy marked (and filled) there
    # traded where nobody did. Fill prices mark the broker once a market has one; a market no
    # fill venue lists is marked by what it has.
    replay = start(Playbook(threshold=7))
    fill = msgspec.structs.replace(
        event(1, T0, "long", 5_000, 2000.0, "ETH-PERP"), exchange="binance_usdm"
    )
    bankrupt = msgspec.structs.replace(
        event(2, T0 + 1_000, "long", 5_000, 1990.0, "ETH-PERP"), exchange="okx"
    )
    alone = msgspec.structs.replace(
        event(3, T0 + 2_000, "long", 5_000, 3.0, "XYZ-PERP"), exchange="okx"
    )
    assert replay.feed([fill, bankrupt, alone]) == 3
    assert replay.broker.prices == {"ETH-PERP": 2000.0, "XYZ-PERP": 3.0}
    assert replay.broker.now == T0 + 2_000


class ExitAfter:
    """Buys ETH at the first event and sells ``hold_ms`` later from ``on_tick``."""

    def __init__(self, hold_ms: int) -> None:
        self.hold_ms = hold_ms
        self.entered_at: int | None = None

    def on_event(self, event: Liquidation, score: int, broker: Broker) -> None:
        if self.entered_at is None:
            broker.open(event.market, 1, 10_000)
            self.entered_at = event.ts

    def on_cascade(self, alert: CascadeAlert, broker: Broker) -> None:
        pass

    def on_tick(self, now_ms: int, broker: Broker) -> None:
        entered = self.entered_at
        if entered is not None and now_ms - entered >= self.hold_ms and broker.positions:
            broker.close("ETH-PERP", "held")


def _fill(seq: int, ts: int, price: float, market: str = "ETH-PERP") -> Liquidation:
    return msgspec.structs.replace(
        event(seq, ts, "long", 5_000, price, market), exchange="binance_usdm"
    )


def test_a_stored_mark_newer_than_the_last_liquidation_prices_the_fill() -> None:
    # A market's liquidations stop after a burst, its price moves on: an exit minutes later was
    # filled at the last liquidation's price (2000) while the stored mark (kept when it moves
    # 0.25 %) said 1900. The newest of the two prices the fill, never one from later.
    from purpleflea.store.base import OpenInterest

    def mark(ts: int, price: float) -> OpenInterest:
        return OpenInterest(ts=ts, market="ETH-PERP", open_interest_usd=1e9, mark_price=price)

    events = [_fill(1, T0, 2000.0), _fill(2, T0 + 600_000, 1800.0)]
    rows = [mark(T0 + 60_000, 1950.0), mark(T0 + 240_000, 1900.0), mark(T0 + 400_000, 1850.0)]
    report = run_backtest(
        events, ExitAfter(300_000), costs=Costs(fee_bps=0, slippage_bps=0), open_interest=rows
    )
    (trade,) = report.trades
    # Decided at T0 + 300 s, filled 500 ms later (the default latency).
    assert (trade.entry_price, trade.exit_ts) == (2000.0, T0 + 300_500)
    assert trade.exit_price == 1900.0  # the row of T0 + 240 s; the one of T0 + 400 s is later
    assert trade.pnl_usd == pytest.approx(10_000 / 2000 * (1900 - 2000))

    # A liquidation newer than the last stored mark is the price, as before.
    fresher = [*events[:1], _fill(3, T0 + 250_000, 1890.0), *events[1:]]
    report = run_backtest(
        fresher, ExitAfter(300_000), costs=Costs(fee_bps=0, slippage_bps=0), open_interest=rows
    )
    assert report.trades[0].exit_price == 1890.0


def test_orders_fill_at_the_price_after_the_latency_not_at_the_print_that_decided_them() -> None:
    # A strategy that reacts to a print cannot trade at that print: the fill was the trigger's
    # own price, so a strategy trading with a cascade bought the move it had not yet reacted to
    # (on a 3-day sim store at --threshold 5, the next fill print ran against 79 % of entries,
    # median 7 bps). An order fills at the newest price `latency_ms` after its decision.
    events = [
        _fill(1, T0, 2000.0),  # decides the entry
        _fill(2, T0 + 200, 2010.0),  # inside the 500 ms: the entry's price
        _fill(3, T0 + 800, 2030.0),  # after it
        _fill(4, T0 + 5_100, 1990.0),  # the exit is decided by the tick of T0 + 5 s: its price
        _fill(5, T0 + 5_600, 1980.0),  # after the exit's fill time
    ]
    free = Costs(fee_bps=0, slippage_bps=0)
    (trade,) = run_backtest(events, ExitAfter(5_000), costs=free).trades
    assert (trade.entry_ts, trade.entry_price) == (T0 + 500, 2010.0)
    assert (trade.exit_ts, trade.exit_price) == (T0 + 5_500, 1990.0)
    assert trade.pnl_usd == pytest.approx(10_000 / 2010 * (1990 - 2010))
    # With no latency: the prints the decisions saw (the trigger, and e3 at the tick).
    (instant,) = run_backtest(events, ExitAfter(5_000), costs=free, latency_ms=0).trades
    assert (instant.entry_ts, instant.entry_price) == (T0, 2000.0)
    assert (instant.exit_ts, instant.exit_price) == (T0 + 5_000, 2030.0)


def test_a_waiting_entry_is_a_position_and_orders_after_the_data_fill_at_the_last_price() -> None:
    replay = start(ExitAfter(0), costs=Costs(fee_bps=0, slippage_bps=0), latency_ms=2_000)
    replay.feed([_fill(1, T0, 2000.0)])
    position = replay.broker.position("ETH-PERP")
    assert position is not None
    assert not position.filled
    assert position.entry_ts == T0 + 2_000
    with pytest.raises(ValueError, match="a position is already open"):
        replay.broker.open("ETH-PERP", 1, 10_000)
    # The tick of T0 + 1 s decides the exit before the entry has filled: both fill in turn.
    replay.feed([_fill(2, T0 + 1_500, 2010.0), _fill(3, T0 + 2_500, 2020.0)])
    assert not replay.broker.positions
    assert not replay.broker.trades
    replay.finish()  # the exit's time (T0 + 3 s) is after the last event: the last price
    (trade,) = replay.broker.trades
    assert (trade.entry_ts, trade.entry_price) == (T0 + 2_000, 2010.0)
    assert (trade.exit_ts, trade.exit_price) == (T0 + 3_000, 2020.0)
    with pytest.raises(ValueError, match="latency_ms must be >= 0, got -1"):
        Broker(latency_ms=-1)


def test_a_stored_mark_outranks_later_bankruptcy_prices_of_a_market_without_fills() -> None:
    from purpleflea.store.base import OpenInterest

    def okx(seq: int, ts: int, price: float) -> Liquidation:
        return msgspec.structs.replace(
            event(seq, ts, "long", 5_000, price, "XYZ-PERP"), exchange="okx"
        )

    replay = start(Recorder())
    replay.add_open_interest(
        [OpenInterest(ts=T0 + 1_000, market="XYZ-PERP", open_interest_usd=1e7, mark_price=3.0)]
    )
    replay.feed([okx(1, T0, 2.9), okx(2, T0 + 2_000, 2.98)])
    # Before the mark, the bankruptcy price was all there was; after it, it is not the market's.
    assert replay.broker.prices == {"XYZ-PERP": 3.0}


def test_a_strategy_in_the_current_folder_loads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # `purpleflea backtest --strategy mystrat:Fade` beside mystrat.py: the console script's
    # sys.path holds its own folder, not the current one ("No module named 'mystrat'").
    import sys

    (tmp_path / "pf_user_strat_xyz.py").write_text(
        "class Fade:\n"
        "    def on_event(self, event, score, broker): pass\n"
        "    def on_cascade(self, alert, broker): pass\n"
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", str(tmp_path))])
    monkeypatch.delitem(sys.modules, "pf_user_strat_xyz", raising=False)
    strategy = load_strategy("pf_user_strat_xyz:Fade")
    assert type(strategy).__name__ == "Fade"
    with pytest.raises(ValueError, match=r"the current folder .* and sys.path"):
        load_strategy("pf_no_such_strat_xyz:Fade")


async def test_the_command_says_when_seq_order_goes_back_in_time(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Older history appended after newer (an import of last year's recordings into a folder a
    # server wrote): the replay (seq order) met a day of events hours behind its clock, scored
    # each at the stream's latest time without a word.
    from purpleflea.commands import backtest as command
    from purpleflea.store.sqlite import SQLiteStore

    newer = history()
    older = [
        msgspec.structs.replace(e, id=f"old{e.seq}", seq=len(newer) + e.seq, ts=e.ts - DAY_MS)
        for e in history()
    ]
    db = tmp_path / "mixed.sqlite"
    store = SQLiteStore(db)
    store.append_now(newer + older)
    await store.close()
    parser = argparse.ArgumentParser()
    command.register(parser.add_subparsers())
    args = parser.parse_args(["backtest", "--store", str(db), "--out", str(tmp_path / "out")])
    import asyncio

    assert await asyncio.to_thread(args.run, args) == 0
    err = capsys.readouterr().err
    assert (
        f"backtest: {len(older):,} events came over a minute before the replay's clock (seq "
        f"{len(newer) + 1:,} at {utc_iso(older[0].ts)} after {utc_iso(newer[-1].ts)}): the "
        "store's seq order goes back in time" in err
    )
    data = json.loads((tmp_path / "out" / "report.json").read_text())
    assert data["params"]["late_events"] == len(older)


class OpensUnpriced:
    """A user strategy with a bug: it trades a market the stream never priced."""

    def on_event(self, event: Liquidation, score: int, broker: Broker) -> None:
        if not broker.positions:
            broker.open("NOPE-PERP", 1, 1_000.0)

    def on_cascade(self, alert: CascadeAlert, broker: Broker) -> None:
        pass


async def test_the_command_says_what_is_wrong_with_an_empty_store_a_non_store_and_an_order(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Each of these ended in a traceback, or for the empty store in a report of nothing
    # ("0 events, 0 trades, Sharpe n/a (the history spans under 2 days)") and status 0.
    import asyncio

    from purpleflea.commands import backtest as command
    from purpleflea.store.sqlite import SQLiteStore

    empty = tmp_path / "empty.sqlite"
    await SQLiteStore(empty).close()
    junk = tmp_path / "junk.sqlite"
    junk.write_text("not a database\n")
    full = tmp_path / "full.sqlite"
    store = SQLiteStore(full)
    store.append_now(history())
    await store.close()
    parser = argparse.ArgumentParser()
    command.register(parser.add_subparsers())
    out = tmp_path / "out"

    async def status(*argv: str) -> int:
        args = parser.parse_args(["backtest", "--out", str(out), *argv])
        code: int = await asyncio.to_thread(args.run, args)
        return code

    assert await status("--store", str(empty)) == 2
    assert f"backtest: {empty} holds no events: nothing to replay" in capsys.readouterr().err
    assert not out.exists()
    assert await status("--store", str(junk)) == 2
    assert f"backtest: store {junk}: file is not a database" in capsys.readouterr().err
    spec = "tests.backtest.test_backtest:OpensUnpriced"
    assert await status("--store", str(full), "--strategy", spec) == 2
    assert (
        f"backtest: {spec} placed an order the broker refused at {utc_iso(T0 + 30_000)} (stream "
        "time): Broker: no price seen yet for 'NOPE-PERP'" in capsys.readouterr().err
    )


def test_a_late_event_does_not_price_fills() -> None:
    # Older history appended after newer: its events come at the replay's clock, which stands
    # still while they do. Their prices marked the broker, so a playbook trade entered and
    # exited in 0 s rode the old cascade's whole fall ($1,179 on $10k below; an import of two
    # real recordings in that order reported $4,113 instead of $874). A late event's price is
    # not the market's now: only a market's first price comes from one.
    replay = start(Recorder(), latency_ms=0)
    replay.feed(
        [
            _fill(1, T0, 2000.0),
            _fill(2, T0 - DAY_MS, 3000.0),  # a day late: not ETH's price now
            _fill(3, T0 - DAY_MS, 5.0, "XYZ-PERP"),  # late, but XYZ's first price
            _fill(4, T0 - DAY_MS + 1_000, 6.0, "XYZ-PERP"),
            _fill(5, T0 - 30_000, 1990.0),  # out of order by seconds, as feeds are: a price
        ]
    )
    assert replay.broker.prices == {"ETH-PERP": 1990.0, "XYZ-PERP": 5.0}
    assert replay.late_events == 3

    newer = history()
    older = [
        msgspec.structs.replace(e, id=f"old{e.seq}", seq=len(newer) + e.seq, ts=e.ts - DAY_MS)
        for e in history("BTC-PERP")
    ]
    free = Costs(fee_bps=0, slippage_bps=0)
    trades = run_backtest(newer + older, Playbook(), costs=free, latency_ms=0).trades
    assert [(t.market, t.exit_ts - t.entry_ts) for t in trades] == [
        ("ETH-PERP", 71_000),
        ("BTC-PERP", 0),
    ]
    assert trades[1].pnl_usd == 0.0  # no time passed, no price moved


def test_metrics_say_how_many_cascades_and_how_much_was_open_at_once() -> None:
    # "20 alerts, 7 trades" on a 3-day sim store read as 13 cascades skipped: the 20 were 7
    # started, 6 updated and 7 exhausted. And the broker checks no margin: the notional open at
    # once (leverage, over the equity) was not reported anywhere.
    def trade(market: str, entry_ts: int, exit_ts: int) -> Trade:
        return Trade(
            market=market,
            direction=1,
            entry_ts=entry_ts,
            exit_ts=exit_ts,
            entry_price=1.0,
            exit_price=1.0,
            notional_usd=10_000.0,
            fees_usd=0.0,
            pnl_usd=0.0,
            reason="held",
        )

    # B overlaps A and C; C opens as A closes (a flip): 20k open at most, never 30k.
    trades = [
        trade("A", T0, T0 + 100),
        trade("B", T0 + 50, T0 + 150),
        trade("C", T0 + 100, T0 + 200),
    ]
    metrics = compute_metrics(
        trades, initial_equity=1e5, start_ts=T0, end_ts=T0 + 200, events=3, alerts=5, cascades=2
    )
    assert (metrics.alerts, metrics.cascades, metrics.max_exposure_usd) == (5, 2, 20_000.0)

    report = run_backtest(history(), Playbook(flip=True))
    assert report.metrics.cascades == 1
    assert report.metrics.alerts >= 2
    assert report.metrics.max_exposure_usd == 10_000.0


def test_report_page_prices_are_plain_decimals_and_losses_read_as_negative_dollars(
    tmp_path: Path,
) -> None:
    # A meme coin's fills read 2.4208e-05 / 2.3e-05 (".6g"), a BTC fill 61234.6 for 61,234.56,
    # and a loss "$-254.74": the page now writes prices as tail and history do.
    def trade(market: str, entry: float, exit_: float, pnl: float) -> Trade:
        return Trade(
            market=market,
            direction=1,
            entry_ts=DAY_MS,
            exit_ts=DAY_MS + 60_000,
            entry_price=entry,
            exit_price=exit_,
            notional_usd=1_000.0,
            fees_usd=1.0,
            pnl_usd=pnl,
            reason="exhausted",
        )

    trades = [
        trade("PEPE-PERP", 2.4208e-05, 2.3e-05, -50.0),
        trade("BTC-PERP", 61_234.56, 60_980.12, -204.74),
    ]
    metrics = compute_metrics(
        trades, initial_equity=10_000.0, start_ts=DAY_MS, end_ts=DAY_MS + 60_000, events=2, alerts=0
    )
    page = write_report(Report(metrics=metrics, params={}, trades=trades, equity=[]), tmp_path)[
        "html"
    ].read_text()
    assert "<td>0.000024208</td><td>0.000023</td><td>-$50.00</td>" in page
    assert "<td>61,234.56</td><td>60,980.12</td><td>-$204.74</td>" in page
    assert "<th>PnL</th><td>-$254.74</td>" in page
    assert "e-05" not in page


class NeedsArguments:
    """A strategy whose constructor wants a parameter: the command builds it with none."""

    def __init__(self, threshold: int) -> None:
        self.threshold = threshold

    def on_event(self, event: Liquidation, score: int, broker: Broker) -> None:
        return

    def on_cascade(self, alert: CascadeAlert, broker: Broker) -> None:
        return


def test_a_strategy_that_needs_arguments_is_a_clear_error_not_a_traceback() -> None:
    # It was `TypeError: NeedsArguments.__init__() missing 1 required positional argument`
    # and a traceback from `purpleflea backtest --strategy ...`.
    with pytest.raises(ValueError, match=r"NeedsArguments\(\) failed: .*missing 1 required"):
        load_strategy("tests.backtest.test_backtest:NeedsArguments")
    with pytest.raises(ValueError, match=r"'path' is not a class"):
        load_strategy("os:path")  # a module: "'module' object is not callable"


@pytest.mark.parametrize("fee", [float("nan"), float("inf")])
def test_costs_must_be_finite(fee: float) -> None:
    # NaN passed the ">= 0" check: the backtest ran and reported "PnL $nan" with status 0.
    with pytest.raises(ValueError, match="finite"):
        Costs(fee_bps=fee)
    with pytest.raises(ValueError, match="finite"):
        Costs(slippage_bps=fee)


@pytest.mark.parametrize("notional", [0.0, -5.0, float("nan"), float("inf")])
def test_an_order_of_no_real_size_is_refused(notional: float) -> None:
    # --notional 0 made 24 trades of $0 and -5 "PnL $-3.68" with a 0% hit rate, status 0.
    with pytest.raises(ValueError, match="notional_usd"):
        Playbook(notional_usd=notional)
    broker = Broker()
    broker.mark("ETH-PERP", 2000.0, T0)
    with pytest.raises(BrokerError, match="notional_usd must be a positive"):
        broker.open("ETH-PERP", 1, notional)


@pytest.mark.parametrize(
    ("flags", "said"),
    [
        (["--page", "0"], "--page must be 1 or more, got 0"),
        (["--page", "-3"], "--page must be 1 or more, got -3"),
        (["--notional", "0"], "--notional: Playbook: notional_usd must be a positive"),
        (["--notional", "nan"], "--notional: Playbook: notional_usd must be a positive"),
        (["--fee-bps", "nan"], "must be finite numbers >= 0, got nan, 5.0"),
    ],
)
def test_the_command_refuses_settings_that_mean_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], flags: list[str], said: str
) -> None:
    # --page 0 said "holds no events: nothing to replay" of a full store; --page -3 ran.
    from purpleflea.commands import backtest as command
    from purpleflea.store.sqlite import SQLiteStore

    db = tmp_path / "history.sqlite"
    SQLiteStore(db).append_now(history())
    parser = argparse.ArgumentParser()
    command.register(parser.add_subparsers())
    args = parser.parse_args(["backtest", "--store", str(db), "--out", str(tmp_path), *flags])
    assert args.run(args) == 2
    err = capsys.readouterr().err
    assert said in err
    assert "holds no events" not in err
    assert not (tmp_path / "report.json").exists()


def test_the_command_takes_no_progress_as_sim_import_and_export_do(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from purpleflea.commands import backtest as command
    from purpleflea.store.sqlite import SQLiteStore

    db = tmp_path / "history.sqlite"
    SQLiteStore(db).append_now(history())
    parser = argparse.ArgumentParser()
    command.register(parser.add_subparsers())
    args = parser.parse_args(
        ["backtest", "--store", str(db), "--out", str(tmp_path / "out"), "--no-progress"]
    )
    assert args.run(args) == 0
    assert "seq elapsed" not in capsys.readouterr().err  # the progress lines


def test_a_report_folder_that_cannot_be_written_is_refused_before_the_replay(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # `backtest --out afile` (an existing file) and `--out /proc/bt` replayed the whole store
    # (312 s for 30 days with --heatmap), then ended in a FileExistsError / FileNotFoundError
    # traceback from the report's mkdir, the run lost.
    from purpleflea.commands import backtest as command

    junk = tmp_path / "junk.sqlite"  # a replay would say "file is not a database"
    junk.write_text("not a database\n")
    afile = tmp_path / "afile"
    afile.write_text("mine\n")
    parser = argparse.ArgumentParser()
    command.register(parser.add_subparsers())
    for out, said in [
        (afile, f"backtest: --out {afile}: a file, not a folder"),
        (afile / "sub", f"backtest: --out {afile / 'sub'}: cannot write the report there"),
        (Path("/proc/purpleflea-report"), "backtest: --out /proc/purpleflea-report: cannot"),
    ]:
        args = parser.parse_args(["backtest", "--store", str(junk), "--out", str(out)])
        assert args.run(args) == 2
        err = capsys.readouterr().err
        assert said in err, err
        assert "not a database" not in err  # refused before the store was read
        assert "Traceback" not in err
    assert afile.read_text() == "mine\n"
    empty_parent = tmp_path / "new" / "deeper"
    args = parser.parse_args(["backtest", "--store", str(junk), "--out", str(empty_parent)])
    assert args.run(args) == 2
    assert "not a database" in capsys.readouterr().err
    assert not (tmp_path / "new").exists()  # the check leaves no folder behind


def test_the_commands_errors_begin_with_purpleflea_like_the_other_commands(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # `purpleflea export: ...`, `purpleflea import: ...`, but `backtest: ...`.
    from purpleflea.commands import backtest as command

    parser = argparse.ArgumentParser()
    command.register(parser.add_subparsers())
    for argv in (
        ["--threshold", "11"],
        ["--store", str(tmp_path / "none.sqlite")],
        ["--store", str(tmp_path), "--latency-ms", "-5"],
    ):
        args = parser.parse_args(["backtest", *argv])
        assert args.run(args) == 2
        err = capsys.readouterr().err
        assert err.startswith("purpleflea backtest: "), err
