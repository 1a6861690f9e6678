"""Cascade scores and alerts on real Binance liquidation recordings (local validation only).

    .venv/bin/python bench/cascade_real.py        # writes docs/img/cascade_real.png

Reads ``data/real/*/binance.csv`` from the team's shared folder (no header; size = z x ap; order
side SELL means a long was liquidated; see SOURCES.md there). Nothing from those files is
written anywhere except the chart's aggregates.
"""

from __future__ import annotations

import csv
import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from purpleflea.engine import CascadeEngine
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


def load(path: Path, start: int, end: int) -> list[Row]:
    rows: list[Row] = []
    with path.open(newline="") as f:
        for rec in csv.reader(f):
            ts = int(rec[10])
            if not start <= ts <= end:
                continue
            price, filled = float(rec[6]), float(rec[9])
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


def score(rows: list[Row]) -> tuple[list[int], list[CascadeAlert]]:
    engine = CascadeEngine()
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


def main() -> None:
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
