"""Backtest results: metrics, the equity chart (PNG), a self-contained HTML page and JSON."""

from __future__ import annotations

import base64
import html
import math
from collections.abc import Sequence
from pathlib import Path

import msgspec

from purpleflea.backtest.broker import Trade
from purpleflea.clock import utc_iso
from purpleflea.formatting import format_price, format_usd_cents

DAY_MS = 86_400_000
#: A fill priced by a print (or mark) older than this is counted stale (:class:`Metrics`).
STALE_FILL_MS = 60_000


class Metrics(msgspec.Struct, frozen=True, kw_only=True):
    """Summary figures. ``sharpe`` is annualized from daily realized PnL over the replayed span
    (``None`` with fewer than two days); ``max_drawdown_usd`` and ``max_drawdown_pct`` are on
    realized equity, each the largest of its kind (they may be different falls).
    ``alerts`` counts every alert (started, updated, exhausted), ``cascades`` the started ones;
    ``max_exposure_usd`` is the most notional open at once (fixed notional per trade and no
    margin check: over ``initial_equity`` it is leverage). ``stale_fills`` counts the fills
    (entries and exits) whose price was printed more than :data:`STALE_FILL_MS` before them
    (the newest price of a market is all a fill can take: in a recording's gap or a quiet
    market it is minutes old, and such a trade's PnL is not the market's at its time);
    ``max_fill_price_age_ms`` is the oldest."""

    events: int
    alerts: int
    cascades: int = 0
    max_exposure_usd: float = 0.0
    trades: int
    wins: int
    hit_rate: float
    pnl_usd: float
    fees_usd: float
    max_drawdown_usd: float
    max_drawdown_pct: float
    sharpe: float | None
    start_ts: int
    end_ts: int
    initial_equity: float
    stale_fills: int = 0
    max_fill_price_age_ms: int = 0


class Report(msgspec.Struct, frozen=True, kw_only=True):
    """The machine-readable backtest result written to ``report.json``."""

    metrics: Metrics
    params: dict[str, object]
    trades: list[Trade]
    equity: list[tuple[int, float]]


def equity_curve(trades: Sequence[Trade], initial: float, start_ts: int) -> list[tuple[int, float]]:
    """Realized equity after each trade (by exit time), starting at ``initial``."""
    curve = [(start_ts, initial)]
    equity = initial
    for trade in sorted(trades, key=lambda t: t.exit_ts):
        equity += trade.pnl_usd
        curve.append((trade.exit_ts, equity))
    return curve


def compute_metrics(
    trades: Sequence[Trade],
    *,
    initial_equity: float,
    start_ts: int,
    end_ts: int,
    events: int,
    alerts: int,
    cascades: int = 0,
) -> Metrics:
    curve = equity_curve(trades, initial_equity, start_ts)
    peak = initial_equity
    drawdown = drawdown_pct = 0.0
    for _, equity in curve:
        peak = max(peak, equity)
        # Each its own maximum: after equity has grown, the largest dollar fall can be a
        # smaller share of its peak than an earlier, smaller one.
        drawdown = max(drawdown, peak - equity)
        if peak > 0:
            drawdown_pct = max(drawdown_pct, (peak - equity) / peak * 100.0)
    wins = sum(1 for t in trades if t.pnl_usd > 0)
    ages = fill_price_ages(trades)
    return Metrics(
        events=events,
        alerts=alerts,
        cascades=cascades,
        max_exposure_usd=max_exposure(trades),
        trades=len(trades),
        wins=wins,
        hit_rate=wins / len(trades) if trades else 0.0,
        pnl_usd=sum(t.pnl_usd for t in trades),
        fees_usd=sum(t.fees_usd for t in trades),
        max_drawdown_usd=drawdown,
        max_drawdown_pct=drawdown_pct,
        sharpe=daily_sharpe(trades, start_ts, end_ts, initial_equity),
        start_ts=start_ts,
        end_ts=end_ts,
        initial_equity=initial_equity,
        stale_fills=sum(1 for age in ages if age > STALE_FILL_MS),
        max_fill_price_age_ms=max(ages, default=0),
    )


def fill_price_ages(trades: Sequence[Trade]) -> list[int]:
    """How old each fill's price was when it filled (ms; fills whose price time is unknown,
    trades made by hand, are left out)."""
    return [
        fill_ts - price_ts
        for t in trades
        for fill_ts, price_ts in ((t.entry_ts, t.entry_price_ts), (t.exit_ts, t.exit_price_ts))
        if price_ts > 0
    ]


def max_exposure(trades: Sequence[Trade]) -> float:
    """The most notional open at once; a position closing when another opens (a flip) is not
    counted twice."""
    changes = sorted(
        [(t.entry_ts, 1, t.notional_usd) for t in trades]
        + [(t.exit_ts, 0, -t.notional_usd) for t in trades]
    )
    open_usd = peak = 0.0
    for _, _, change in changes:
        open_usd += change
        peak = max(peak, open_usd)
    return peak


def daily_sharpe(
    trades: Sequence[Trade], start_ts: int, end_ts: int, initial_equity: float
) -> float | None:
    """Annualized (365 days: crypto trades every day) Sharpe of daily realized returns;
    None when there is none (:func:`sharpe_text` says why)."""
    days = _days(start_ts, end_ts)
    if not _two_days(start_ts, end_ts) or initial_equity <= 0:
        return None
    daily = [0.0] * days
    for trade in trades:
        day = min(max((trade.exit_ts - start_ts) // DAY_MS, 0), days - 1)
        daily[day] += trade.pnl_usd / initial_equity
    mean = sum(daily) / days
    var = sum((r - mean) ** 2 for r in daily) / (days - 1)
    if var <= 0:
        return None
    return mean / math.sqrt(var) * math.sqrt(365.0)


def _days(start_ts: int, end_ts: int) -> int:
    """Calendar days (from the first event's time of day) the replay touches."""
    return (end_ts - start_ts) // DAY_MS + 1


def _two_days(start_ts: int, end_ts: int) -> bool:
    """Whether the replay spans two days or more: 1.7 days touch two calendar days, but a
    ratio of one day and most of another (a Sharpe of 73 on a 1.7-day store) is no measure."""
    return end_ts - start_ts >= 2 * DAY_MS


def sharpe_text(m: Metrics) -> str:
    """``1.84``, or ``n/a`` with the reason there is no Sharpe ratio."""
    if m.sharpe is not None:
        return f"{m.sharpe:.2f}"
    if not _two_days(m.start_ts, m.end_ts):
        return "n/a (the history spans under 2 days: no daily returns to compare)"
    if m.initial_equity <= 0:
        return "n/a (no initial equity to measure returns against)"
    if m.trades == 0:
        return "n/a (no trades: daily returns are all zero)"
    return "n/a (daily returns do not vary)"


def write_report(report: Report, out: Path) -> dict[str, Path]:
    """Write ``report.json``, ``equity.png`` and ``report.html`` into ``out``; returns paths."""
    out.mkdir(parents=True, exist_ok=True)
    paths = {
        "json": out / "report.json",
        "png": out / "equity.png",
        "html": out / "report.html",
    }
    paths["json"].write_bytes(msgspec.json.format(msgspec.json.encode(report), indent=2))
    _equity_png(report, paths["png"])
    paths["html"].write_text(_html(report, paths["png"].read_bytes()), encoding="utf-8")
    return paths


def _equity_png(report: Report, path: Path) -> None:
    import matplotlib  # noqa: PLC0415 (heavy; only when a report is written)

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    # Hours since the start keep the axis typed and readable for any span.
    start = report.equity[0][0] if report.equity else 0
    times = [(ts - start) / 3_600_000 for ts, _ in report.equity]
    values = [value for _, value in report.equity]
    fig, ax = plt.subplots(figsize=(10, 4), dpi=100)
    ax.step(times, values, where="post", color="#7b3fe4")
    ax.axhline(report.metrics.initial_equity, color="#999", linewidth=0.8, linestyle="--")
    ax.set_title(f"Equity (realized), {report.metrics.trades} trades")
    ax.set_ylabel("USD")
    ax.set_xlabel("hours since the first event")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _html(report: Report, png: bytes) -> str:
    m = report.metrics
    sharpe = sharpe_text(m)
    rows = [
        ("Events replayed", f"{m.events:,}"),
        ("Cascade alerts", f"{m.alerts:,} ({m.cascades:,} cascades started)"),
        ("Trades", f"{m.trades:,}"),
        ("Hit rate", f"{m.hit_rate:.1%}"),
        ("PnL", format_usd_cents(m.pnl_usd)),
        ("Fees", format_usd_cents(m.fees_usd)),
        ("Most notional open at once", format_usd_cents(m.max_exposure_usd)),
        ("Max drawdown", f"{format_usd_cents(m.max_drawdown_usd)} ({m.max_drawdown_pct:.2f}%)"),
        ("Sharpe (daily, annualized)", sharpe),
    ]
    params = ", ".join(f"{k}={v}" for k, v in report.params.items())
    metrics = "".join(f"<tr><th>{k}</th><td>{html.escape(v)}</td></tr>" for k, v in rows)
    shown = report.trades[:1000]
    trades = "".join(
        f"<tr><td>{html.escape(t.market)}</td><td>{'long' if t.direction > 0 else 'short'}</td>"
        f"<td>{utc_iso(t.entry_ts)}</td><td>{utc_iso(t.exit_ts)}</td>"
        # Prices as tail and history write them: ".6g" wrote 2.4208e-05 and 61234.6.
        f"<td>{format_price(t.entry_price)}</td><td>{format_price(t.exit_price)}</td>"
        f"<td>{format_usd_cents(t.pnl_usd)}</td><td>{html.escape(t.reason)}</td></tr>"
        for t in shown
    )
    image = base64.b64encode(png).decode("ascii")
    more = f"<p>First {len(shown)} of {len(report.trades)} trades.</p>" if report.trades else ""
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>Purple Flea backtest</title>
<style>body{{font-family:system-ui,sans-serif;margin:2em;color:#222}}
table{{border-collapse:collapse}}
td,th{{padding:2px 10px;text-align:left;border-bottom:1px solid #ddd}}
</style></head><body>
<h1>Backtest</h1><p>{html.escape(params)}</p>
<table>{metrics}</table>
<img alt="equity curve" src="data:image/png;base64,{image}">
<h2>Trades</h2>{more}
<table><tr><th>market</th><th>direction</th><th>entry (UTC)</th><th>exit (UTC)</th><th>entry</th>
<th>exit</th><th>PnL USD</th><th>exit reason</th></tr>{trades}</table>
</body></html>
"""
