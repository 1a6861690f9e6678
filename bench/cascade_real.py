"""Cascade scores and alerts on real Binance liquidation recordings (local validation only).

    .venv/bin/python bench/cascade_real.py        # writes docs/img/cascade_real.png
    .venv/bin/python bench/cascade_real.py --goals  # issue 20's real-data goals, every session

Reads ``data/real/*/binance.csv`` from the team's shared folder (no header; size = z x ap, or
z x p where ap is missing; order side SELL means a long was liquidated; see SOURCES.md there).
Nothing from those files is written anywhere except the chart's aggregates.

``--goals``: every recorded Binance session (a file's events split at gaps over 10 minutes),
each replayed through a fresh default engine as in :func:`score` (no open interest is known,
so the engine's move term sizes a burst by the price move it made), reported per split:
TUNING (the older files, on which the move term was chosen) and EVALUATION (the newest, run
once). ``FIELD=NUMBER`` arguments set CascadeConfig fields (``move_gain=0``: the engine
without the move term, as before issue 20).
A *heavy minute* is a market and side's calendar minute whose liquidated notional is at least
the 99th percentile of all market-side minutes with a liquidation, pooled over every session,
and that holds at least 3 events (Binance's stream reports at most one per symbol per second,
so 3 events are forced orders in 3 different seconds, not one order's fills). A *wave* is a run
of heavy minutes of one market and side at most 5 minutes apart. Its alert delay is from the
wave's first liquidation in its first heavy minute to the first ``started`` alert of that market
and side at most 90 s before (the engine's window) and before the wave ends (an alert already
active then counts as 0 s); goal <= 60 s. A *calm* session has no heavy minute; goal: no alert.
"""

from __future__ import annotations

import csv
import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from purpleflea.engine import CascadeConfig, CascadeEngine
from purpleflea.model import CascadeAlert

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("PURPLEFLEA_SHARED", ROOT.parent / "shared"))

#: (label, file, first ts, last ts): the densest session we have and a calm one.
SESSIONS = (
    (
        "riftfern 2025-12-27 14:31-15:55 (densest available)",
        "riftfern_data-streams/binance.csv",
        1766845800000,
        1766851000000,
    ),
    (
        "BandsThoBaby 2024-08-17 11:58-12:28 (calm weekend)",
        "BandsThoBaby_Data_Streams_Project/binance.csv",
        0,
        1 << 62,
    ),
)


@dataclass
class Row:
    market: str
    side: str
    size_usd: float
    price: float
    ts: int


#: Every Binance file we hold (SOURCES.md); each is split into sessions at gaps of SESSION_GAP_MS.
FILES = (
    "riftfern_data-streams/binance.csv",
    "NeoParth_strategies/binance.csv",
    "BandsThoBaby_Data_Streams_Project/binance.csv",
    "BandsThoBaby_Data_Streams_Project/binance_bigliqs.csv",
)
#: The split (issue 20): the engine's no-open-interest rules were chosen on the older recordings
#: and checked once on the newest, so the evaluation files say what a new market would see.
TUNING = (
    "NeoParth_strategies/binance.csv",
    "BandsThoBaby_Data_Streams_Project/binance.csv",
    "BandsThoBaby_Data_Streams_Project/binance_bigliqs.csv",
)
EVALUATION = ("riftfern_data-streams/binance.csv",)
SESSION_GAP_MS = 600_000
HEAVY_PERCENTILE = 99.0
HEAVY_MIN_EVENTS = 3
WAVE_GAP_MIN = 5
ALERT_BEFORE_MS = 90_000
GOAL_DELAY_S = 60.0


def load(path: Path, start: int, end: int) -> list[Row]:
    rows: list[Row] = []
    with path.open(newline="") as f:
        for rec in csv.reader(f):
            ts = int(rec[10])
            if not start <= ts <= end:
                continue
            # NeoParth's file writes the average price as "None": its order price stands in.
            price = float(rec[6] if rec[6] != "None" else rec[5])
            filled = float(rec[9])
            rows.append(
                Row(
                    f"{rec[0]}-PERP",
                    "long" if rec[1] == "SELL" else "short",
                    filled * price,
                    price,
                    ts,
                )
            )
    rows.sort(key=lambda r: r.ts)
    return rows


def score(
    rows: list[Row], config: CascadeConfig | None = None
) -> tuple[list[int], list[CascadeAlert]]:
    engine = CascadeEngine(config)
    scores: list[int] = []
    alerts: list[CascadeAlert] = []
    second = rows[0].ts // 1000
    for r in rows:
        while second < r.ts // 1000:
            second += 1
            alerts += engine.tick(second * 1000)
        scores.append(engine.observe(r.market, r.side, r.size_usd, r.price, r.ts, "binance_usdm"))  # type: ignore[arg-type]
        alerts += engine.drain_alerts()
    alerts += engine.tick(rows[-1].ts + 120_000)
    return scores, alerts


def sessions(rows: list[Row]) -> list[list[Row]]:
    """``rows`` (in time order) split wherever the stream went quiet for SESSION_GAP_MS."""
    out: list[list[Row]] = []
    for r in rows:
        if not out or r.ts - out[-1][-1].ts > SESSION_GAP_MS:
            out.append([])
        out[-1].append(r)
    return out


def minutes(rows: list[Row]) -> dict[tuple[str, str, int], list[Row]]:
    """Each market, side and calendar minute's events."""
    out: dict[tuple[str, str, int], list[Row]] = {}
    for r in rows:
        out.setdefault((r.market, r.side, r.ts // 60_000), []).append(r)
    return out


def heavy_threshold(all_sessions: list[list[Row]]) -> float:
    """The pooled HEAVY_PERCENTILE of market-side minute notionals over every session."""
    import numpy as np

    usd = [sum(r.size_usd for r in m) for s in all_sessions for m in minutes(s).values()]
    return float(np.percentile(usd, HEAVY_PERCENTILE))


@dataclass
class Wave:
    market: str
    side: str
    first_ts: int  # the first liquidation of its first heavy minute
    end_ts: int  # the last liquidation of its last heavy minute
    heavy_minutes: int
    usd: float


def waves(rows: list[Row], threshold: float) -> list[Wave]:
    """Runs of heavy minutes (>= threshold, >= HEAVY_MIN_EVENTS) per market and side."""
    heavy = sorted(
        (k, m)
        for k, m in minutes(rows).items()
        if len(m) >= HEAVY_MIN_EVENTS and sum(r.size_usd for r in m) >= threshold
    )
    out: list[Wave] = []
    last: dict[tuple[str, str], tuple[int, Wave]] = {}
    for (market, side, minute), m in heavy:
        usd = sum(r.size_usd for r in m)
        prev = last.get((market, side))
        if prev is not None and minute - prev[0] <= WAVE_GAP_MIN:
            w = prev[1]
            w.end_ts, w.heavy_minutes, w.usd = m[-1].ts, w.heavy_minutes + 1, w.usd + usd
        else:
            w = Wave(market, side, m[0].ts, m[-1].ts, 1, usd)
            out.append(w)
        last[(market, side)] = (minute, w)
    return sorted(out, key=lambda w: w.first_ts)


def alert_delay_s(wave: Wave, alerts: list[CascadeAlert]) -> float | None:
    """Seconds from the wave's first heavy liquidation to its market and side's started alert
    (0 when one is active at that moment), or None when none fires before the wave ends."""
    spans: list[tuple[int, int]] = []
    opened: dict[str, int] = {}
    for a in alerts:
        if a.market != wave.market or a.side != wave.side:
            continue
        if a.status == "started":
            opened[a.id] = a.updated_at
        elif a.status == "exhausted" and a.id in opened:
            spans.append((opened.pop(a.id), a.updated_at))
    spans += [(at, 1 << 62) for at in opened.values()]
    best: float | None = None
    for start, end in spans:
        if start <= wave.first_ts <= end:
            return 0.0
        if wave.first_ts - ALERT_BEFORE_MS <= start <= wave.end_ts:
            delay = max(0.0, (start - wave.first_ts) / 1000.0)
            best = delay if best is None else min(best, delay)
    return best


def goals(config: CascadeConfig | None = None) -> None:
    """Issue 20's real-data cascade goals over every recorded session, per split."""
    from datetime import UTC, datetime

    all_sessions = [
        (name, s)
        for name in FILES
        for s in sessions(load(SHARED / "data" / "real" / name, 0, 1 << 62))
    ]
    threshold = heavy_threshold([s for _, s in all_sessions])
    print(
        f"heavy minute: a market and side's minute with >= ${threshold:,.0f} liquidated (the "
        f"pooled p{HEAVY_PERCENTILE:g} of market-side minutes) in >= {HEAVY_MIN_EVENTS} events"
    )
    delays: dict[str, list[float | None]] = {"tuning": [], "evaluation": []}
    calm_alerts = {"tuning": 0, "evaluation": 0}
    calm_sessions = {"tuning": 0, "evaluation": 0}
    other_alerts = {"tuning": 0, "evaluation": 0}
    for name, rows in all_sessions:
        split = "tuning" if name in TUNING else "evaluation"
        _, alerts = score(rows, config)
        started = [a for a in alerts if a.status == "started"]
        found = waves(rows, threshold)
        t0 = rows[0].ts
        when = datetime.fromtimestamp(t0 / 1000, UTC).strftime("%Y-%m-%d %H:%M")
        kind = "waves" if found else "calm"
        print(
            f"[{split}] {name.split('/')[0]} {when} ({(rows[-1].ts - t0) / 60_000:.0f} min, "
            f"{len(rows)} events): {kind}, {len(found)} waves, {len(started)} alerts started"
        )
        if not found:
            calm_alerts[split] += len(started)
            calm_sessions[split] += 1
        # An alert on a market and side with no wave from 90 s after it to 5 min before it.
        other_alerts[split] += (
            sum(
                not any(
                    w.market == a.market
                    and w.side == a.side
                    and w.first_ts - ALERT_BEFORE_MS - 300_000 <= a.updated_at <= w.end_ts + 300_000
                    for w in found
                )
                for a in started
            )
            if found
            else 0
        )
        for w in found:
            d = alert_delay_s(w, alerts)
            delays[split].append(d)
            verdict = "none" if d is None else f"{d:.1f} s"
            print(
                f"  wave {w.market} {w.side}s at {(w.first_ts - t0) / 60_000:5.1f} min: "
                f"{w.heavy_minutes} heavy min, ${w.usd / 1e3:,.0f}k; started alert {verdict}"
            )
        for a in started:
            print(f"  alert {(a.updated_at - t0) / 60_000:5.1f} min  {a.message}")
    for split, ds in delays.items():
        met = sum(d is not None and d <= GOAL_DELAY_S for d in ds)
        print(
            f"{split}: waves with a started alert within {GOAL_DELAY_S:g} s: {met} of {len(ds)}; "
            f"alerts in {calm_sessions[split]} calm sessions: {calm_alerts[split]}; alerts away "
            f"from every wave in wave sessions: {other_alerts[split]}"
        )


def main() -> None:
    import sys

    args = sys.argv[1:]
    if "--goals" in args:
        # --set FIELD=NUMBER (CascadeConfig), as bench/cascade_eval.py; e.g. move_gain=0 for the
        # engine without its no-open-interest price term.
        sets = [a.split("=", 1) for a in args if "=" in a]
        goals(CascadeConfig(**{k.removeprefix("--set").strip(): float(v) for k, v in sets}))
        return
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, len(SESSIONS), figsize=(14, 7), sharex="col")
    for col, (label, name, start, end) in enumerate(SESSIONS):
        rows = load(SHARED / "data" / "real" / name, start, end)
        scores, alerts = score(rows)
        t0 = rows[0].ts
        minutes = [(r.ts - t0) / 60_000 for r in rows]
        top, bottom = axes[0][col], axes[1][col]
        # Notional per 30 s, longs down-coloured and shorts up-coloured.
        bins: dict[tuple[int, str], float] = Counter()
        for r in rows:
            bins[((r.ts - t0) // 30_000, r.side)] += r.size_usd
        for side, color in (("long", "#d9534f"), ("short", "#5cb85c")):
            xs = sorted(k for k, s in bins if s == side)
            top.bar(
                [x / 2 for x in xs],
                [bins[(x, side)] / 1e3 for x in xs],
                width=0.5,
                color=color,
                alpha=0.7,
                label=f"{side}s liquidated",
            )
        top.set_ylabel("notional per 30 s (k USD)")
        top.set_title(f"{label}\n{len(rows):,} events")
        top.legend(loc="upper right")
        bottom.scatter(minutes, scores, s=4, c=scores, cmap="plasma", vmin=0, vmax=10)
        started = [a for a in alerts if a.status == "started"]
        for a in started:
            bottom.axvline((a.updated_at - t0) / 60_000, color="#7b3fe4", alpha=0.5, linewidth=1)
        bottom.axhline(7, color="#999", linestyle="--", linewidth=0.8)
        bottom.set_ylim(-0.5, 10.5)
        bottom.set_ylabel("cascade score (per event)")
        bottom.set_xlabel("minutes since the first event (vertical lines: alerts started)")
        high = sum(s >= 7 for s in scores)
        print(
            f"{label}: {len(rows)} events, {len(started)} alerts started, "
            f"{high} events scored >= 7, score histogram {sorted(Counter(scores).items())}"
        )
        for a in started:
            print(f"  {(a.updated_at - t0) / 60_000:6.1f} min  {a.message}")
    fig.tight_layout()
    out = ROOT / "docs" / "img" / "cascade_real.png"
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=90)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
