"""How well aggregates' ``est_size_usd`` recovers what throttled feeds hid, on the simulator.

    .venv/bin/python bench/coverage_estimate.py                    # held-out seeds
    .venv/bin/python bench/coverage_estimate.py --seeds 1 2 3      # the tuning seeds

The simulator's events are its truth (every liquidation, every venue). Each ``snapshot``
venue's events are thinned as its feed would be, one per symbol per second
(:func:`purpleflea.sim.throttle.kept_by_throttle`); ``complete`` venues keep all. The thinned
events are rolled up per hour, market and exchange (count, seconds with an event, USD) exactly
as the stores' rollups do, and :func:`purpleflea.engine.coverage.factors` estimates what each
snapshot venue hid. Per seed it prints, over the market-hours whose snapshot venues truly had
at least ``--min-events`` liquidations:

- the median and 90th percentile of |estimated - true| / true of the snapshot venues' USD
  volume (the part the estimate fills in), next to the same error of the measured volume
  (no estimate: what a tracker that adds feeds as if complete reports);
- the median signed error of the snapshot venues' volume (negative: the estimate falls short);
- the same two for the snapshot venues' event count (``est_count``), and the measured count's;
- the median error of the market's total (all venues, measured + estimated), next to the
  measured total's;
- the snapshot venues' USD error split in two: with each minute's true hidden count priced
  at the estimate's price (the pricing's own error, and its signed median), and with the
  estimated hidden count priced at the hidden events' true mean size (the count's own error).

With ``--ceilings``, a line per seed adds the USD error the method would reach told what it
cannot see: each snapshot venue's true ratio, each hidden event's cohort (its price), both.

The tuning seeds are 1, 2, 3 (every choice of the method was made on them). The default
seeds 101-105 and 201-205 were looked at while the previous method (METHOD_VERSION 2) was
changed; 301-305 were first run after its cap was set; 401-405 were first run once, after
METHOD_VERSION 3 was settled; 501-505 after its gap guard; 601-605 after the simulator's
timing work; 701-705 once, after METHOD_VERSION 4's pricing was chosen, and again after Gate
became ``complete``; 801-805 once, after the simulator's cross-margin accounts and Gate's
change, with METHOD_VERSION 4 kept; 901-905 once, after the simulator's venue price kinds,
with METHOD_VERSION 4 kept again (BENCHMARKS.md).
"""

from __future__ import annotations

import argparse
import statistics
from collections import defaultdict

import numpy as np

from purpleflea.engine.coverage import factors, minute_estimates
from purpleflea.sim.history import blocks, history_config
from purpleflea.sim.process import Simulator
from purpleflea.sim.throttle import kept_by_throttle
from purpleflea.venues.registry import coverage_of

HOUR_MS = 3_600_000
MINUTE_MS = 60_000


def run_seed(
    seed: int, *, markets: int, hours: float, min_events: int, ceilings: bool = False
) -> dict[str, float]:
    sim = Simulator(history_config(seed=seed, n_markets=markets))
    parts: dict[str, list[np.ndarray]] = defaultdict(list)
    for raw in blocks(sim, hours / 24):
        parts["ts"].append(raw.ts)
        parts["market"].append(raw.market)
        parts["listing"].append(raw.listing)
        parts["usd"].append(raw.size_usd)
        parts["cohort"].append(raw.cohort)
    ts, market, listing, usd, cohort = (
        np.concatenate(parts[k]) for k in ("ts", "market", "listing", "usd", "cohort")
    )
    exchange_of = {
        (m, li): spec.listings[li].exchange
        for m, spec in enumerate(sim.markets)
        for li in range(len(spec.listings))
    }
    symbol = market * 64 + listing
    pairs = zip(market.tolist(), listing.tolist(), strict=True)
    exchanges = np.array([exchange_of[pair] for pair in pairs])
    snapshot = np.array([coverage_of(str(e)) == "snapshot" for e in exchanges])
    kept = kept_by_throttle(ts, symbol, snapshot)

    hour = ts // HOUR_MS * HOUR_MS
    minute = ts // MINUTE_MS * MINUTE_MS
    # Observed cells per minute, market and exchange, as the minute rollups hold them.
    cells: dict[tuple[int, int, str], list[float]] = defaultdict(lambda: [0, 0.0])
    seconds: dict[tuple[int, int, str], set[int]] = defaultdict(set)
    truth_snapshot: dict[tuple[int, int], list[float]] = defaultdict(lambda: [0, 0.0])
    truth_total: dict[tuple[int, int], float] = defaultdict(float)
    # Each snapshot venue's true events and USD per minute (for the error's decomposition).
    truth_minute: dict[tuple[int, int, str], list[float]] = defaultdict(lambda: [0, 0.0])
    for i in range(ts.size):
        key = (int(minute[i]), int(market[i]), str(exchanges[i]))
        at = (int(hour[i]), int(market[i]))
        truth_total[at] += float(usd[i])
        if snapshot[i]:
            cell = truth_snapshot[at]
            cell[0] += 1
            cell[1] += float(usd[i])
            truth_minute[key][0] += 1
            truth_minute[key][1] += float(usd[i])
        if kept[i]:
            cells[key][0] += 1
            cells[key][1] += float(usd[i])
            seconds[key].add(int(ts[i]) // 1000)
    rows = [
        (m0, str(m), e, int(count), len(seconds[(m0, m, e)]), total)
        for (m0, m, e), (count, total) in cells.items()
    ]
    found = factors(rows, coverage_of)
    # The USD error's two parts: the true hidden count at the estimated price (the pricing's
    # own error), and the estimated count at the hidden events' true mean price (the count's).
    priced_only: dict[tuple[int, int], float] = defaultdict(float)
    counted_only: dict[tuple[int, int], float] = defaultdict(float)
    for (m0, mk, e), est in minute_estimates(rows, coverage_of).items():
        true_count, true_usd = truth_minute[(m0, int(mk), e)]
        hidden = true_count - est.shown
        hidden_price = (true_usd - est.shown_usd) / hidden if hidden > 0 else est.price
        at = (m0 // HOUR_MS * HOUR_MS, int(mk))
        priced_only[at] += est.shown_usd + hidden * est.price
        counted_only[at] += est.shown_usd + (est.events - est.shown) * hidden_price
    ceiling = (
        _ceilings(rows, ts, market, exchanges, usd, cohort, snapshot, kept) if ceilings else {}
    )
    measured_snapshot: dict[tuple[int, int], float] = defaultdict(float)
    measured_total: dict[tuple[int, int], float] = defaultdict(float)
    added_usd: dict[tuple[int, int], float] = defaultdict(float)
    measured_count: dict[tuple[int, int], int] = defaultdict(int)
    added_count: dict[tuple[int, int], float] = defaultdict(float)
    for (m0, m, e), (shown, total) in cells.items():
        at = (m0 // HOUR_MS * HOUR_MS, m)
        measured_total[at] += total
        if coverage_of(e) == "snapshot":
            measured_snapshot[at] += total
            measured_count[at] += int(shown)
            factor = found.get((at[0], str(m), e))
            if factor is not None:
                added_usd[at] += total * (factor.usd - 1.0)
                added_count[at] += shown * (factor.events - 1.0)
    errors, signed, raw_errors, total_errors, raw_total_errors = [], [], [], [], []
    count_errors, count_signed, raw_count_errors = [], [], []
    pricing_errors, pricing_signed, counting_errors = [], [], []
    ceiling_errors: dict[str, list[float]] = defaultdict(list)
    for key, (count, true_usd) in truth_snapshot.items():
        if count < min_events:
            continue
        added = added_usd[key]
        signed.append((measured_snapshot[key] + added - true_usd) / true_usd)
        errors.append(abs(signed[-1]))
        raw_errors.append(abs(measured_snapshot[key] - true_usd) / true_usd)
        total_errors.append(abs(measured_total[key] + added - truth_total[key]) / truth_total[key])
        raw_total_errors.append(abs(measured_total[key] - truth_total[key]) / truth_total[key])
        count_signed.append((measured_count[key] + added_count[key] - count) / count)
        count_errors.append(abs(count_signed[-1]))
        raw_count_errors.append(abs(measured_count[key] - count) / count)
        pricing_signed.append((priced_only[key] - true_usd) / true_usd)
        pricing_errors.append(abs(pricing_signed[-1]))
        counting_errors.append(abs(counted_only[key] - true_usd) / true_usd)
        for name, estimated in ceiling.items():
            ceiling_errors[name].append(abs(estimated[key] - true_usd) / true_usd)
    ceiling_medians = {name: statistics.median(e) for name, e in ceiling_errors.items()}
    return {
        **ceiling_medians,
        "market_hours": len(errors),
        "events": int(ts.size),
        "shown": int(kept.sum()),
        "median": statistics.median(errors),
        "p90": float(np.percentile(errors, 90)),
        "signed_median": statistics.median(signed),
        "measured_median": statistics.median(raw_errors),
        "total_median": statistics.median(total_errors),
        "measured_total_median": statistics.median(raw_total_errors),
        "count_median": statistics.median(count_errors),
        "count_signed_median": statistics.median(count_signed),
        "measured_count_median": statistics.median(raw_count_errors),
        "pricing_median": statistics.median(pricing_errors),
        "pricing_signed_median": statistics.median(pricing_signed),
        "counting_median": statistics.median(counting_errors),
    }


def _ceilings(
    rows: list[tuple[int, str, str, int, int, float]],
    ts: np.ndarray,
    market: np.ndarray,
    exchanges: np.ndarray,
    usd: np.ndarray,
    cohort: np.ndarray,
    snapshot: np.ndarray,
    kept: np.ndarray,
) -> dict[str, dict[tuple[int, int], float]]:
    """The snapshot venues' hourly USD the method would give with a piece of the truth it
    cannot see, per market-hour: ``true_ratio``, each snapshot venue's true ratio of events to
    the complete venues' over the whole run in place of the fitted one; ``cohort_price``, each
    hidden event priced at its cohort's mean size over the cohort's other events (every venue,
    hidden ones too: what knowing which position a hidden order belongs to would give; minutes
    whose hidden events have no such cohort keep the estimate's price); ``both``."""
    complete = np.array([coverage_of(str(e)) == "complete" for e in exchanges])
    reference: dict[str, int] = defaultdict(int)
    venue: dict[tuple[str, str], int] = defaultdict(int)
    for m, e, is_complete, is_snapshot in zip(
        market.tolist(), exchanges.tolist(), complete.tolist(), snapshot.tolist(), strict=True
    ):
        if is_complete:
            reference[str(m)] += 1
        elif is_snapshot:
            venue[(str(m), str(e))] += 1
    true_ratio = {key: n / reference[key[0]] for key, n in venue.items() if reference[key[0]]}
    # Each hidden event's cohort mean without itself, added up per minute and venue.
    cohort_usd = defaultdict(float)
    cohort_n: dict[int, int] = defaultdict(int)
    for c, size in zip(cohort.tolist(), usd.tolist(), strict=True):
        cohort_usd[c] += size
        cohort_n[c] += 1
    priced: dict[tuple[int, str, str], list[float]] = defaultdict(lambda: [0, 0.0])
    for i in np.flatnonzero(snapshot & ~kept).tolist():
        c = int(cohort[i])
        if cohort_n[c] > 1:
            cell = priced[(int(ts[i]) // MINUTE_MS * MINUTE_MS, str(market[i]), str(exchanges[i]))]
            cell[0] += 1
            cell[1] += (cohort_usd[c] - float(usd[i])) / (cohort_n[c] - 1)
    cohort_price = {key: total / n for key, (n, total) in priced.items()}
    out: dict[str, dict[tuple[int, int], float]] = {}
    for name, ratios, by_cohort in (
        ("true_ratio", true_ratio, False),
        ("cohort_price", None, True),
        ("both", true_ratio, True),
    ):
        hourly: dict[tuple[int, int], float] = defaultdict(float)
        for key, est in minute_estimates(rows, coverage_of, ratios=ratios).items():
            price = cohort_price.get(key, est.price) if by_cohort else est.price
            at = (key[0] // HOUR_MS * HOUR_MS, int(key[1]))
            hourly[at] += est.shown_usd + (est.events - est.shown) * price
        out[name] = hourly
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[101, 102, 103, 104, 105])
    parser.add_argument("--markets", type=int, default=30)
    parser.add_argument("--hours", type=float, default=24.0)
    parser.add_argument("--min-events", type=int, default=10)
    parser.add_argument(
        "--ceilings",
        action="store_true",
        help="also the USD error with each venue's true ratio, with hidden events priced at "
        "their cohort's mean size, and with both (what the method could reach knowing them)",
    )
    args = parser.parse_args()
    print(
        "| seed | market-hours | events (truth) | shown after throttle | snapshot venues' "
        "hourly USD error, median (p90) | signed, median | measured only, median | "
        "market total error, median | measured only, median | snapshot venues' hourly "
        "count (est_count) error, median | signed, median | measured only, median | "
        "USD error with the true hidden count (pricing alone), median | signed, median | "
        "USD error with the hidden events' true price (count alone), median |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    medians = []
    for seed in args.seeds:
        r = run_seed(
            seed,
            markets=args.markets,
            hours=args.hours,
            min_events=args.min_events,
            ceilings=args.ceilings,
        )
        medians.append(r["median"])
        print(
            f"| {seed} | {r['market_hours']} | {r['events']} | {r['shown']} | "
            f"{r['median']:.1%} ({r['p90']:.1%}) | {r['signed_median']:+.1%} | "
            f"{r['measured_median']:.1%} | "
            f"{r['total_median']:.1%} | {r['measured_total_median']:.1%} | "
            f"{r['count_median']:.1%} | {r['count_signed_median']:+.1%} | "
            f"{r['measured_count_median']:.1%} | "
            f"{r['pricing_median']:.1%} | {r['pricing_signed_median']:+.1%} | "
            f"{r['counting_median']:.1%} |"
        )
        if args.ceilings:
            print(
                f"|   ceilings, USD error median: true ratio {r['true_ratio']:.1%}, "
                f"cohort price {r['cohort_price']:.1%}, both {r['both']:.1%} |"
            )
    print(f"\nmedian over seeds of the median hourly error: {statistics.median(medians):.1%}")


if __name__ == "__main__":
    main()
