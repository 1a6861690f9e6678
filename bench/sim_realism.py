"""The simulator against real recordings: sizes, burstiness, spread over markets, BTC hours.

    .venv/bin/python bench/sim_realism.py            # writes docs/img/sim_realism.png
    .venv/bin/python bench/sim_realism.py --scorecard [--seeds 5] [--days 5]
                                                     # the realism scorecard (sim_scorecard.py)

Real data (local validation only, never shipped; see shared/data/real/SOURCES.md):

- Binance USD-M ``!forceOrder@arr`` recordings (``*/binance*.csv``, no header): Binance's
  1-per-symbol-per-second snapshot stream. Size = filled_accumulated_quantity x average_price
  (NeoParth's file has no average price: its order price is used).
- Coinglass hourly BTC liquidations (Binance+Bybit+OKX) with Binance BTCUSDT open interest.

Simulated data: ``--days`` of the live configuration (250 ms steps), seed ``--seed``. To
compare with the Binance recordings, the simulator's ``binance_usdm`` events are thinned the
way Binance's stream is: the last event per symbol per second.
"""

from __future__ import annotations

import argparse
import csv
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from purpleflea.sim import SimConfig, Simulator
from purpleflea.sim.truth import TrueCascade

REPO = Path(__file__).resolve().parents[1]
REAL = REPO.parent / "shared" / "data" / "real"
SESSION_GAP_MS = 10 * 60_000


@dataclass
class Stream:
    """Events of one source: time (ms), symbol/market, USD size."""

    ts: np.ndarray
    symbol: np.ndarray
    usd: np.ndarray


def read_binance(paths: Iterable[Path]) -> Stream:
    ts: list[int] = []
    symbols: list[str] = []
    usd: list[float] = []
    for path in paths:
        with path.open() as handle:
            for row in csv.reader(handle):
                price = row[6] if row[6] != "None" else row[5]
                ts.append(int(row[10]))
                symbols.append(row[0])
                usd.append(float(row[9]) * float(price))
    order = np.argsort(ts, kind="stable")
    return Stream(np.array(ts)[order], np.array(symbols)[order], np.array(usd)[order])


def sessions(stream: Stream) -> list[Stream]:
    """Split into continuous recording sessions (gaps over 10 minutes)."""
    cuts = np.flatnonzero(np.diff(stream.ts) > SESSION_GAP_MS) + 1
    parts = np.split(np.arange(stream.ts.size), cuts)
    return [Stream(stream.ts[p], stream.symbol[p], stream.usd[p]) for p in parts if p.size > 50]


def simulate(seed: int, days: float) -> tuple[Simulator, Stream, Stream, list[TrueCascade]]:
    """All simulated events and the binance_usdm events thinned like Binance's stream."""
    sim = Simulator(SimConfig(seed=seed))
    ts: list[int] = []
    market: list[str] = []
    usd: list[float] = []
    exchange: list[str] = []
    symbol: list[str] = []
    for step in sim.run(int(days * 86_400_000)):
        for e in step.liquidations:
            ts.append(e.ts or 0)
            market.append(e.market)
            usd.append(e.size_usd or 0.0)
            exchange.append(e.exchange)
            symbol.append(e.symbol)
    all_events = Stream(np.array(ts), np.array(market), np.array(usd))
    ex = np.array(exchange)
    binance = ex == "binance_usdm"
    b_ts, b_sym, b_usd = np.array(ts)[binance], np.array(symbol)[binance], np.array(usd)[binance]
    # Keep the last event per (symbol, second).
    key = np.char.add(b_sym, (b_ts // 1000).astype(str))
    last = np.unique(key[::-1], return_index=True)[1]
    keep = np.sort(b_ts.size - 1 - last)
    thinned = Stream(b_ts[keep], b_sym[keep], b_usd[keep])
    return sim, all_events, thinned, sim.truth.cascades()


def counts_per_bin(ts: np.ndarray, bin_ms: int) -> np.ndarray:
    start = ts.min() // bin_ms
    return np.bincount(ts // bin_ms - start)


def burstiness(streams: list[Stream]) -> dict[str, float]:
    """Fano factors of 1-s and 10-s counts, CV of inter-arrival times, peak minute / mean."""
    f1, f10, cvs, peaks, rates = [], [], [], [], []
    for s in streams:
        c1, c10, c60 = (counts_per_bin(s.ts, b) for b in (1000, 10_000, 60_000))
        f1.append(c1.var() / c1.mean())
        f10.append(c10.var() / c10.mean())
        gaps = np.diff(s.ts)
        cvs.append(gaps.std() / gaps.mean())
        peaks.append(c60.max() / c60.mean())
        rates.append(s.ts.size / ((s.ts[-1] - s.ts[0]) / 1000))
    return {
        "events/s": float(np.median(rates)),
        "Fano 1 s": float(np.median(f1)),
        "Fano 10 s": float(np.median(f10)),
        "CV gaps": float(np.median(cvs)),
        "peak min/mean": float(np.median(peaks)),
    }


def size_stats(usd: np.ndarray) -> dict[str, float]:
    p50, p90, p99 = np.percentile(usd, [50, 90, 99])
    return {"median $": p50, "mean $": usd.mean(), "p90 $": p90, "p99 $": p99}


def top_share(symbols: np.ndarray, top: int = 10) -> float:
    _, counts = np.unique(symbols, return_counts=True)
    return float(np.sort(counts)[::-1][:top].sum() / counts.sum())


def report(
    real: Stream,
    real_sessions: list[Stream],
    sim_all: Stream,
    sim_thin: Stream,
    hour_windows: list[Stream],
    cascades: list[TrueCascade],
    days: float,
) -> None:
    """Print the comparison as markdown."""
    print(
        f"real Binance recordings: {real.ts.size:,} events in {len(real_sessions)} sessions, "
        f"{np.unique(real.symbol).size} symbols"
    )
    per_day, usd_day = sim_all.ts.size / days, sim_all.usd.sum() / days
    print(
        f"sim: {sim_all.ts.size:,} events in {days:g} days ({per_day:,.0f}/day, "
        f"${usd_day / 1e6:,.0f}M/day), binance_usdm thinned: {sim_thin.ts.size:,}"
    )
    print("\n| measure | real Binance | sim binance_usdm thinned |")
    print("| --- | ---: | ---: |")
    sizes_real, sizes_sim = size_stats(real.usd), size_stats(sim_thin.usd)
    for name, value in sizes_real.items():
        print(f"| event size {name} | {value:,.0f} | {sizes_sim[name]:,.0f} |")
    b_real, b_sim = burstiness(real_sessions), burstiness(hour_windows)
    for name, value in b_real.items():
        print(
            f"| {name} (median over real sessions / sim hours) | {value:.2f} | {b_sim[name]:.2f} |"
        )
    share_real = np.median([top_share(s.symbol) for s in real_sessions])
    share_sim = np.median([top_share(s.symbol) for s in hour_windows])
    print(f"| top-10 symbols' share of events | {share_real:.0%} | {share_sim:.0%} |")
    per_market_day = np.unique(sim_all.symbol, return_counts=True)[1] / days
    print(
        f"\nsim events per market per day (all exchanges): median "
        f"{np.median(per_market_day):,.0f}, p90 {np.percentile(per_market_day, 90):,.0f}, "
        f"max {per_market_day.max():,.0f}"
    )
    if cascades:
        notional = np.array([c.notional_usd for c in cascades])
        duration = np.array([(c.end_ms - c.start_ms) / 1000 for c in cascades])
        moves = np.abs([c.price_move_pct for c in cascades])
        print(
            f"true cascades: {len(cascades)} in {days:g} days ({len(cascades) / days:.1f}/day); "
            f"notional median ${np.median(notional) / 1e6:,.2f}M, "
            f"max ${notional.max() / 1e6:,.1f}M; "
            f"duration median {np.median(duration):.0f} s; |price move| median "
            f"{np.median(moves):.1f}%"
        )


def coinglass_btc_hours() -> tuple[np.ndarray, np.ndarray]:
    path = REAL / "ismethanhtung_btc-liquidations-analysis/c8a9730/coinglass_BTC_regime_1h_1y.csv"
    with path.open() as handle:
        rows = list(csv.DictReader(handle))
    liq = np.array([float(r["liquidation_total_usd"]) for r in rows])
    oi = np.array([float(r["oi_close"]) for r in rows])
    ok = oi > 0
    return liq[ok], oi[ok]


def sim_btc_hours(days: float, seed: int) -> tuple[np.ndarray, float]:
    """Hourly BTC liquidations on Binance+Bybit+OKX and Binance's share of BTC open interest."""
    fresh = Simulator(SimConfig(seed=seed, n_markets=1))
    hours = np.zeros(int(days * 24) + 1)
    oi_binance: list[float] = []
    wanted = {"binance_usdm", "bybit", "okx"}
    for step in fresh.run(int(days * 86_400_000)):
        for e in step.liquidations:
            if e.exchange in wanted:
                hours[((e.ts or 0) - fresh.config.start_ms) // 3_600_000] += e.size_usd or 0.0
        for snap in step.snapshots:
            if snap.exchange == "binance_usdm":
                oi_binance.append(snap.open_interest_usd)
    return hours[:-1], float(np.median(oi_binance))


def ccdf(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    x = np.sort(values)
    return x, 1.0 - np.arange(x.size) / x.size


def run_scorecard(seeds: int, days: float, first_seed: int = 0) -> None:
    """Print the realism scorecard (see bench/sim_scorecard.py) over ``seeds`` seeds."""
    import sim_scorecard as card

    real = read_binance(sorted(REAL.glob("*/binance*.csv")))
    real_sessions = sessions(real)
    real_figures = {f"event size {k}": v for k, v in size_stats(real.usd).items()}
    real_figures.update(burstiness(real_sessions))
    real_figures["top-10 symbols' share of events"] = float(
        np.median([top_share(s.symbol) for s in real_sessions])
    )
    cg_liq, cg_oi = coinglass_btc_hours()
    frac = cg_liq / cg_oi
    real_figures["BTC hourly liquidations / OI, median"] = float(np.median(frac))
    real_figures["BTC hourly liquidations / OI, p99"] = float(np.percentile(frac, 99))
    real_figures.update(card.real_returns_and_basis(REAL))
    real_figures.update(card.real_open_interest(REAL))

    def burst(windows: list[tuple[np.ndarray, np.ndarray, np.ndarray]]) -> dict[str, float]:
        return burstiness([Stream(*w) for w in windows])

    per_seed = []
    for seed in range(first_seed, first_seed + seeds):
        figures = card.simulate_seed(seed, days, burst, size_stats, top_share)
        figures.update(card.simulate_btc_returns(seed))
        figures.update(card.simulate_crash(seed))
        per_seed.append(figures)
        print(f"seed {seed} done", flush=True)
    card.scorecard(real_figures, per_seed, seeds, days)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--days", type=float, default=5.0)
    parser.add_argument("--out", default=str(REPO / "docs" / "img" / "sim_realism.png"))
    parser.add_argument("--scorecard", action="store_true", help="print the realism scorecard")
    parser.add_argument("--seeds", type=int, default=5, help="scorecard seeds (default 5)")
    parser.add_argument(
        "--first-seed", type=int, default=0, help="scorecard seeds start here (default 0)"
    )
    args = parser.parse_args()
    if args.scorecard:
        run_scorecard(args.seeds, args.days, args.first_seed)
        return

    real = read_binance(sorted(REAL.glob("*/binance*.csv")))
    real_sessions = sessions(real)
    sim, sim_all, sim_thin, cascades = simulate(args.seed, args.days)
    # Sim burstiness over 1-hour windows, like the real sessions' lengths.
    hour_windows = [
        Stream(sim_thin.ts[sel], sim_thin.symbol[sel], sim_thin.usd[sel])
        for h in range(int(args.days * 24))
        if (sel := (sim_thin.ts - sim.config.start_ms) // 3_600_000 == h).sum() > 50
    ]
    cg_liq, cg_oi = coinglass_btc_hours()
    btc_hours, btc_oi = sim_btc_hours(args.days, args.seed)

    report(real, real_sessions, sim_all, sim_thin, hour_windows, cascades, args.days)
    cg_frac = cg_liq / cg_oi
    sim_frac = btc_hours / btc_oi
    print(
        f"BTC hourly liquidations (Binance+Bybit+OKX) / Binance BTC OI: real median "
        f"{np.median(cg_frac):.1e}, p99 {np.percentile(cg_frac, 99):.1e}, max {cg_frac.max():.1e}"
        f"; sim median {np.median(sim_frac):.1e}, p99 {np.percentile(sim_frac, 99):.1e}, "
        f"max {sim_frac.max():.1e}, hours without any {np.mean(sim_frac == 0):.0%}"
    )

    fig, axes = plt.subplots(2, 3, figsize=(16, 9))
    bins = np.logspace(0, 7, 50)
    ax = axes[0, 0]
    for label, usd in (
        ("real Binance (recorded)", real.usd),
        ("sim binance_usdm, thinned", sim_thin.usd),
    ):
        ax.hist(usd, bins=bins, weights=np.full(usd.size, 1 / usd.size), alpha=0.55, label=label)
    ax.set_xscale("log")
    ax.set_title("event size (USD), share of events per bin")
    ax.legend()

    ax = axes[0, 1]
    for label, streams in (("real sessions", real_sessions), ("sim hours", hour_windows)):
        counts = np.concatenate([counts_per_bin(s.ts, 10_000) for s in streams])
        x, y = ccdf(counts / counts.mean())
        ax.step(x, y, where="post", label=label)
    ax.set_yscale("log")
    ax.set_title("events per 10 s / mean (CCDF): burstiness")
    ax.set_xlabel("count / mean")
    ax.legend()

    ax = axes[0, 2]
    for label, streams in (("real sessions", real_sessions), ("sim hours", hour_windows)):
        shares = []
        for s in streams:
            _, counts = np.unique(s.symbol, return_counts=True)
            ranked = np.sort(counts)[::-1] / counts.sum()
            shares.append(np.pad(ranked, (0, max(0, 60 - ranked.size)))[:60])
        ax.plot(np.arange(1, 61), np.median(shares, axis=0), marker=".", label=label)
    ax.set_yscale("log")
    ax.set_title("share of events by symbol rank (median)")
    ax.set_xlabel("symbol rank")
    ax.legend()

    ax = axes[1, 0]
    for label, values in (("Coinglass BTC (1 y)", cg_frac), ("sim BTC-PERP", sim_frac)):
        x, y = ccdf(values[values > 0])
        ax.step(x, y, where="post", label=label)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_title("hourly BTC liquidations (Binance+Bybit+OKX) / Binance OI")
    ax.legend()

    ax = axes[1, 1]
    if cascades:
        x, y = ccdf(np.array([c.notional_usd for c in cascades]))
        ax.step(x, y, where="post", label=f"{len(cascades)} true cascades")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.legend()
    ax.set_title(f"sim true cascades: notional (USD), {args.days:g} days")

    ax = axes[1, 2]
    for label, streams in (("real sessions", real_sessions), ("sim hours", hour_windows)):
        x, y = ccdf(np.concatenate([counts_per_bin(s.ts, 60_000) for s in streams]))
        ax.step(x, y, where="post", label=label)
    ax.set_xscale("symlog")
    ax.set_yscale("log")
    ax.set_title("events per minute, thinned Binance (CCDF)")
    ax.set_xlabel("events in a minute")
    ax.legend()
    fig.suptitle(f"Simulator realism (seed {args.seed}, {args.days:g} days) vs real recordings")
    fig.tight_layout()
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=90)
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
