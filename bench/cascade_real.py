"""Cascade scores and alerts on real Binance liquidation recordings (local validation only).

    .venv/bin/python bench/cascade_real.py        # writes docs/img/cascade_real.png
    .venv/bin/python bench/cascade_real.py --goals  # issue 20's real-data goals, every session
    .venv/bin/python bench/cascade_real.py --goals --from-wave=0  # each wave from a cold start
    .venv/bin/python bench/cascade_real.py --venues   # held out: OKX and Hyperliquid's pages
    .venv/bin/python bench/cascade_real.py --goals --wave=relative  # market-relative waves

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

``--wave=relative`` (with ``--goals`` or ``--venues``): the same goals judged on waves of
heavy minutes relative to the market (``bench/cascade_real_waves.py``; docs/cascade.md, "A
market-relative wave"), reported beside the issue's pooled bar, which stays the goal.

``--venues``: the OTHER-VENUES split, held out (never used for tuning): OKX's and Hyperliquid's
real liquidations of SOURCES.md 5b, by the same bar and wave definition (:func:`other_venues`,
loaded by ``bench/cascade_real_venues.py``).
"""

from __future__ import annotations

import bisect
import csv
import os
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from cascade_real_waves import (
    DEFINITIONS,
    HEAVY_MIN_EVENTS,
    HEAVY_PERCENTILE,
    MIN_SECONDS,
    RELATIVE_K,
    RELATIVE_MIN_HISTORY,
    RELATIVE_WINDOW_MIN,
    Definition,
    Wave,
    heavy_threshold,
    waves,
)
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
#: Any other recording in the same format found beside them (``*/binance*.csv`` under
#: data/real, e.g. one a reviewer holds out from the team) is replayed as the HELD-OUT split.
SPLITS = ("tuning", "evaluation", "held-out")
SESSION_GAP_MS = 600_000
ALERT_BEFORE_MS = 90_000
GOAL_DELAY_S = 60.0


def recordings() -> list[tuple[str, str]]:
    """Every Binance recording to replay, as (file under data/real, split): ours, then any
    other ``*/binance*.csv`` in the same format (12 or 13 columns, an integer trade time)."""
    real = SHARED / "data" / "real"
    out = [(name, "tuning" if name in TUNING else "evaluation") for name in FILES]
    for path in sorted(real.glob("*/binance*.csv")):
        name = path.relative_to(real).as_posix()
        if name in FILES:
            continue
        with path.open(newline="") as f:
            first = next(csv.reader(f), [])
        if len(first) in (12, 13) and first[10].isdigit() and first[1] in ("BUY", "SELL"):
            out.append((name, "held-out"))
        else:
            print(f"skipped {name}: not a !forceOrder@arr recording (first row {first[:3]})")
    return out


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
    rows: list[Row],
    config: CascadeConfig | None = None,
    oi: list[OiPoint] | None = None,
    trace: Callable[[CascadeEngine, Row, int], None] | None = None,
    exchange: str = "binance_usdm",
) -> tuple[list[int], list[CascadeAlert]]:
    """Replay ``rows`` through a fresh engine: a ``tick`` at every whole second crossed and,
    with ``oi``, each open interest value handed over once a live server would have it."""
    engine = CascadeEngine(config)
    feed = OiFeed(engine, oi or [], rows[0].ts)
    scores: list[int] = []
    alerts: list[CascadeAlert] = []
    second = rows[0].ts // 1000
    for r in rows:
        while second < r.ts // 1000:
            second += 1
            feed.until(second * 1000)
            alerts += engine.tick(second * 1000)
        feed.until(r.ts)
        s = engine.observe(r.market, r.side, r.size_usd, r.price, r.ts, exchange)  # type: ignore[arg-type]
        scores.append(s)
        if trace is not None:
            trace(engine, r, s)
        alerts += engine.drain_alerts()
    alerts += engine.tick(rows[-1].ts + 120_000)
    return scores, alerts


# -- open interest as a live server would have had it ---------------------------------------

KNX = "0xknxwledge_group-m-finm33150-final"
COINGLASS_BTC = "ismethanhtung_btc-liquidations-analysis/c8a9730/coinglass_BTC_regime_1h_1y.csv"
HOUR_MS = 3_600_000
#: ``--oi`` modes: which real hourly open interest the replay hands the engine.
OI_MODES = ("none", "binance", "all")


@dataclass(frozen=True)
class OiPoint:
    known_at: int  # the first moment a live server could have had it (ms)
    market: str
    instrument: str
    usd: float


def open_interest(mode: str) -> list[OiPoint]:
    """Real hourly open interest, each value stamped with when it was known (SOURCES.md):

    - ``binance``: Binance BTCUSDT's own (Coinglass's history of it), 2025-12-04 -> 2026-06-02;
      a bar's close is known at the bar's end (its open time + 1 h).
    - ``all``: that plus Hyperliquid's BTC, ETH, SOL, HYPE and DOGE (0xArchive), 2025-03-08 ->
      2026-03-07; an hour's value is taken as known an hour after its stamp, since the file
      does not say whether the stamp opens or closes the hour (so never early, up to an hour
      stale). A server following both venues sums them (two instruments of one market).

    Nothing is known for any other market or before those dates.
    """
    if mode == "none":
        return []
    if mode not in OI_MODES:
        raise ValueError(f"--oi must be one of {OI_MODES}, got {mode!r}")
    real = SHARED / "data" / "real"
    out: list[OiPoint] = []
    with (real / COINGLASS_BTC).open(newline="") as f:
        for rec in csv.DictReader(f):
            usd = float(rec["oi_close"])
            if usd > 0:
                out.append(
                    OiPoint(
                        int(rec["timestamp"]) + HOUR_MS, "BTC-PERP", "binance_usdm:BTCUSDT", usd
                    )
                )
    if mode == "all":
        import pyarrow.parquet as pq

        for rec in pq.read_table(real / KNX / "open_interest.parquet").to_pylist():
            if rec["venue"] != "hyperliquid" or not rec["oi_usd"]:
                continue
            stamp = int(rec["timestamp"].timestamp() * 1000)
            market = f"{rec['coin']}-PERP"
            out.append(
                OiPoint(stamp + HOUR_MS, market, f"hyperliquid:{rec['coin']}", rec["oi_usd"])
            )
    out.sort(key=lambda p: p.known_at)
    return out


class OiFeed:
    """Hands ``points`` to ``engine`` in time order: at ``start`` the latest value of each
    instrument already known (a server that had been running would hold it), then each as its
    ``known_at`` passes; an instrument last heard of more than 2 h before is forgotten (a gap
    in the file, as a live snapshot that stopped)."""

    STALE_MS = 2 * HOUR_MS

    def __init__(self, engine: CascadeEngine, points: list[OiPoint], start: int) -> None:
        self.engine = engine
        self.points = points
        self.i = bisect.bisect_right([p.known_at for p in points], start - self.STALE_MS)
        self.last: dict[tuple[str, str], int] = {}
        self.known: set[str] = set()  # markets that had open interest at some point
        self.until(start)

    def until(self, now: int) -> None:
        points = self.points
        while self.i < len(points) and points[self.i].known_at <= now:
            p = points[self.i]
            self.engine.set_open_interest(p.market, p.usd, p.instrument)
            self.last[(p.market, p.instrument)] = p.known_at
            self.known.add(p.market)
            self.i += 1
        for (market, instrument), at in list(self.last.items()):
            if now - at > self.STALE_MS:
                self.engine.set_open_interest(market, 0.0, instrument)
                del self.last[(market, instrument)]


def sessions(rows: list[Row]) -> list[list[Row]]:
    """``rows`` (in time order) split wherever the stream went quiet for SESSION_GAP_MS."""
    out: list[list[Row]] = []
    for r in rows:
        if not out or r.ts - out[-1][-1].ts > SESSION_GAP_MS:
            out.append([])
        out[-1].append(r)
    return out


#: Two forced orders within this of each other's price are one position's fills (or one
#: shock): the engine's ``level_tol_pct``.
LEVEL_TOL = 0.0012


def positions_in(wave: Wave, rows: list[Row]) -> int:
    """The wave's distinct price levels (its market and side's events from its first heavy
    liquidation to its last, each further than LEVEL_TOL from every level before): one level
    is one position's fills or one shock, not a chain of positions."""
    levels: list[float] = []
    for r in rows:
        if r.market != wave.market or r.side != wave.side:
            continue
        inside = wave.first_ts <= r.ts <= wave.end_ts
        if inside and all(abs(r.price - p) > LEVEL_TOL * p for p in levels):
            levels.append(r.price)
    return len(levels)


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


def away_from_waves(started: list[CascadeAlert], found: list[Wave]) -> list[CascadeAlert]:
    """The alerts on a market and side with no wave from 90 s after them to 5 min before."""
    return [
        a
        for a in started
        if not any(
            w.market == a.market
            and w.side == a.side
            and w.first_ts - ALERT_BEFORE_MS - 300_000 <= a.updated_at <= w.end_ts + 300_000
            for w in found
        )
    ]


@dataclass(frozen=True)
class Terms:
    """The score's terms for one market and side right after an event (a diagnostic)."""

    rate: float  # rate_gain x log2(window / the market's expected notional)
    size: float  # the size term (open interest known) or the move term, clipped
    move: float | None  # the move term's price move (a fraction), None with open interest
    count_cap: float  # count_gain x events in the window
    level_cap: float  # level_base + level_gain x (levels - 1)
    levels: int
    win_usd: float
    win_n: int
    cooling: bool  # inside the cooldown after this market and side's last cascade
    active: bool  # a cascade of this market and side is active

    @property
    def raw(self) -> float:
        """The terms' sum before the caps (no fuel, no acceleration on a replay)."""
        return self.rate + self.size


def terms_of(engine: CascadeEngine, r: Row) -> Terms:
    """The score's terms for ``r``'s market and side right after ``engine`` observed ``r``."""
    import math

    c = engine.config
    st = engine._states[r.market][0 if r.side == "long" else 1]  # a diagnostic reads the state
    rate = c.rate_gain * (math.log(st.win_usd) - st.log_expected) / math.log(2)
    move: float | None = None
    if st.oi_on:
        term = c.oi_gain * (math.log(st.win_usd) + st.oi_log) / math.log(2)
        size = max(-c.oi_clip, min(c.oi_clip, term))
    else:
        ref = st.ref_price
        move = (ref - r.price if r.side == "long" else r.price - ref) / ref if ref else 0.0
        term = c.move_gain * math.log2(move / (c.move_ref_pct / 100)) if move > 0 else -c.move_clip
        size = max(-c.move_clip, min(c.move_clip, term))
    return Terms(
        rate,
        size,
        move,
        c.count_gain * st.win_n,
        st.level_cap,
        st.levels,
        st.win_usd,
        st.win_n,
        r.ts < st.cooldown_until,
        st.cascade is not None,
    )


class Tracer:
    """Per event of every market and side: the score's terms right after it (``--trace``)."""

    def __init__(self, config: CascadeConfig) -> None:
        self.config = config
        self.rows: dict[tuple[str, str], list[tuple[Row, int, str]]] = {}
        self.terms: dict[tuple[str, str], list[tuple[Row, int, Terms]]] = {}

    def __call__(self, engine: CascadeEngine, r: Row, s: int) -> None:
        t = terms_of(engine, r)
        if t.move is None:
            sized = f"oi {t.size:+5.2f}"
        else:
            sized = f"move {t.move * 100:+.2f}% {t.size:+5.2f}"
        text = (
            f"${r.size_usd / 1e3:6.1f}k @{r.price:<10g} win ${t.win_usd / 1e3:6.1f}k/"
            f"{t.win_n:2d} rate {t.rate:+5.2f} {sized} caps n {t.count_cap:4.1f} "
            f"lvl {t.levels} {t.level_cap:3.0f}"
        )
        self.rows.setdefault((r.market, r.side), []).append((r, s, text))
        self.terms.setdefault((r.market, r.side), []).append((r, s, t))

    def show(self, w: Wave, alerts: list[CascadeAlert]) -> None:
        started = [
            a.updated_at
            for a in alerts
            if a.market == w.market and a.side == w.side and a.status == "started"
        ]
        for r, s, text in self.rows.get((w.market, w.side), []):
            if w.first_ts - ALERT_BEFORE_MS <= r.ts <= w.end_ts:
                mark = " <- started" if r.ts in started else ""
                print(f"      {(r.ts - w.first_ts) / 1000:+7.1f} s  score {s:2d}  {text}{mark}")


def goals(
    config: CascadeConfig | None = None,
    oi_mode: str = "none",
    split_only: str = "all",
    trace: bool = False,
    from_wave_s: float | None = None,
    wave: Definition = "pooled",
) -> None:
    """Issue 20's real-data cascade goals over every recorded session, per split; with
    ``from_wave_s`` each wave is replayed by a fresh engine from that many seconds before its
    first heavy liquidation (a recording or a server that starts inside the activity: every
    market cold), calm sessions and alerts away from waves as ever."""
    from datetime import UTC, datetime

    config = config if config is not None else CascadeConfig()
    all_sessions = [
        (name, split, s)
        for name, split in recordings()
        for s in sessions(load(SHARED / "data" / "real" / name, 0, 1 << 62))
    ]
    # The bar is pooled over every session of our own files whichever split is run, so it
    # never moves, not even when a held-out recording is added.
    threshold = heavy_threshold([s for name, _, s in all_sessions if name in FILES])
    oi = open_interest(oi_mode)
    print(f"{heavy_rule(threshold, wave)}; open interest: {oi_mode}")
    held_out = sorted({name for name, split, _ in all_sessions if split == "held-out"})
    print(f"held-out recordings found: {', '.join(held_out) or 'none'}")
    delays: dict[str, list[float | None]] = {split: [] for split in SPLITS}
    multi: dict[str, list[float | None]] = {split: [] for split in SPLITS}
    calm_alerts = dict.fromkeys(SPLITS, 0)
    calm_sessions = dict.fromkeys(SPLITS, 0)
    other_alerts = dict.fromkeys(SPLITS, 0)
    all_found: dict[str, list[Wave]] = {split: [] for split in SPLITS}
    for name, split, rows in all_sessions:
        if split_only not in ("all", split):
            continue
        tracer = Tracer(config) if trace else None
        _, alerts = score(rows, config, oi, tracer)
        with_oi = sorted(
            {p.market for p in oi if rows[0].ts - 2 * HOUR_MS <= p.known_at <= rows[-1].ts}
            & {r.market for r in rows}
        )
        started = [a for a in alerts if a.status == "started"]
        found = waves(rows, threshold, wave)
        all_found[split] += found
        t0 = rows[0].ts
        when = datetime.fromtimestamp(t0 / 1000, UTC).strftime("%Y-%m-%d %H:%M")
        kind = "waves" if found else "calm"
        print(
            f"[{split}] {name.split('/')[0]} {when} ({(rows[-1].ts - t0) / 60_000:.0f} min, "
            f"{len(rows)} events): {kind}, {len(found)} waves, {len(started)} alerts started; "
            f"open interest known for {', '.join(with_oi) or 'no market'}"
        )
        if not found:
            calm_alerts[split] += len(started)
            calm_sessions[split] += 1
        other_alerts[split] += len(away_from_waves(started, found)) if found else 0
        for w in found:
            if from_wave_s is None:
                d = alert_delay_s(w, alerts)
            else:  # a recording (or a server) that starts this long before the wave
                cut = [r for r in rows if r.ts >= w.first_ts - from_wave_s * 1000]
                d = alert_delay_s(w, score(cut, config, oi)[1])
            delays[split].append(d)
            positions = positions_in(w, rows)
            if positions > 1:
                multi[split].append(d)
            verdict = "none" if d is None else f"{d:.1f} s"
            print(
                f"  wave {w.market} {w.side}s at {(w.first_ts - t0) / 60_000:5.1f} min: "
                f"{w.heavy_minutes} heavy min, ${w.usd / 1e3:,.0f}k, {positions} price "
                f"level(s) over the 0.12 % tolerance; started alert {verdict}"
            )
            if tracer is not None:
                tracer.show(w, alerts)
        for a in started:
            print(f"  alert {(a.updated_at - t0) / 60_000:5.1f} min  {a.message}")
    for split, ds in delays.items():
        if split_only not in ("all", split) or (split == "held-out" and not held_out):
            continue
        met = sum(d is not None and d <= GOAL_DELAY_S for d in ds)
        met_multi = sum(d is not None and d <= GOAL_DELAY_S for d in multi[split])
        print(
            f"{split}: waves with a started alert within {GOAL_DELAY_S:g} s: {met} of {len(ds)} "
            f"({met_multi} of {len(multi[split])} waves of more than one price level); alerts in "
            f"{calm_sessions[split]} calm sessions: {calm_alerts[split]}; alerts away from every "
            f"wave in wave sessions: {other_alerts[split]}"
        )
        print(f"{split}: {wave_counts(all_found[split])}")


def other_venues(
    config: CascadeConfig | None = None, oi_mode: str = "none", wave: Definition = "pooled"
) -> None:
    """The OTHER-VENUES split (held out, never used for tuning): OKX's and Hyperliquid's real
    liquidations (:mod:`cascade_real_venues`), judged by the same heavy-minute bar as the Binance
    files (pooled over those files only, unchanged) and the same wave definition.

    - OKX: one continuous replay of the whole file (REST pages, so a quiet 10 minutes is a
      quiet market, not a recorder that stopped) through a fresh engine; per market its page's
      window, waves, waves with a started alert within 60 s, alerts, alerts away from every
      wave (as ``--goals``), and the same per market-day; a market with no wave is calm.
    - Hyperliquid: the side is unknown, and the engine scores each side on its own, so no
      replay of the engine on these rows is what the engine would do (one with the sides
      pooled adds the other side's notional, count and price levels to each side's window).
      Measured instead, whatever each row's side: which markets are calm for certain (no
      minute heavy even with both sides pooled) and where an alert could start at all
      (:func:`cascade_real_venues.alert_possible`); and, per side label, which way its bursts
      moved the price, OKX's known sides as the check.
    """
    import cascade_real_venues as venues

    config = config if config is not None else CascadeConfig()
    real = SHARED / "data" / "real"
    path = real / venues.KNX_LIQUIDATIONS
    threshold = heavy_threshold(
        [s for name in FILES for s in sessions(load(real / name, 0, 1 << 62))]
    )
    oi = open_interest(oi_mode)
    print(
        f"{heavy_rule(threshold, wave)}; open interest: {oi_mode}; file {venues.KNX_LIQUIDATIONS}"
    )

    okx = [Row(*x) for x in venues.load(path, "okx")]
    found = waves(okx, threshold, wave)
    _, alerts = score(okx, config, oi, exchange="okx")
    started = [a for a in alerts if a.status == "started"]
    away = away_from_waves(started, found)
    days = calm_days = 0.0
    met_all = calm_alerts = 0
    multi: list[float | None] = []
    print(f"[other-venues] OKX: {len(okx)} orders, one replay")
    for market, (first, last) in sorted(venues.windows(okx).items()):
        span_d = (last - first) / 86_400_000
        days += span_d
        mine = [w for w in found if w.market == market]
        delays = [alert_delay_s(w, alerts) for w in mine]
        met = sum(d is not None and d <= GOAL_DELAY_S for d in delays)
        met_all += met
        multi += [d for w, d in zip(mine, delays, strict=True) if positions_in(w, okx) > 1]
        own = [a for a in started if a.market == market]
        own_away = [a for a in away if a.market == market]
        # Calm: more than 5 min after and 6.5 min before every wave of the market (either side).
        calm = venues.calm_spans((first, last), [_near(w.first_ts, w.end_ts) for w in mine])
        calm_days += sum(hi - lo for lo, hi in calm) / 86_400_000
        in_calm = [a for a in own if any(lo <= a.updated_at <= hi for lo, hi in calm)]
        calm_alerts += len(in_calm)
        caught = ", ".join(f"{d:.1f} s" for d in delays if d is not None) or "none"
        print(
            f"  {market}: {_utc(first)} -> {_utc(last)} ({span_d * 24:.1f} h), "
            f"{sum(r.market == market for r in okx)} orders: {len(mine)} waves, {met} with a "
            f"started alert within {GOAL_DELAY_S:g} s (alerts on waves: {caught}); "
            f"{len(own)} alerts started, {len(own_away)} away from every wave, {len(in_calm)} in "
            f"its {sum(hi - lo for lo, hi in calm) / 3_600_000:.1f} calm hours; median wave "
            f"{_median_k(mine)}"
        )
        for a in own_away:
            print(f"    away: {_utc(a.updated_at)} {a.message}")
    print("  the 10 largest waves (heavy minutes' notional) and their started alert:")
    for w in sorted(found, key=lambda w: -w.usd)[:10]:
        d = alert_delay_s(w, alerts)
        print(
            f"    {_utc(w.first_ts)} {w.market} {w.side}s ${w.usd / 1e3:,.0f}k in "
            f"{w.heavy_minutes} heavy min: {'none' if d is None else f'{d:.1f} s'}"
        )
    met_multi = sum(d is not None and d <= GOAL_DELAY_S for d in multi)
    print(
        f"  OKX: {days:.2f} market-days, {len(found)} waves, {met_all} with a started alert "
        f"within {GOAL_DELAY_S:g} s ({met_multi} of {len(multi)} waves of more than one price "
        f"level); {len(started)} alerts started, {len(away)} away from every wave "
        f"({len(away) / days:.2f} per market-day); calm time: {calm_days:.2f} market-days, "
        f"{calm_alerts} alerts in it"
    )
    print(f"  OKX: {wave_counts(found)}")

    if wave == "relative":
        # A relative heavy minute is over the pooled bar in >= 3 distinct seconds, so over it in
        # >= 3 events with the sides pooled: the pooled bar's side-blind calm time and spans are
        # a bound for this definition too (its own needs each side's history, unknown here).
        print(
            "[other-venues] Hyperliquid, relative waves: the pooled bar's side-blind figures "
            "below bound them too"
        )
    hl = venues.load(path, "hyperliquid")
    heavy = venues.heavy_pooled(hl, threshold, HEAVY_MIN_EVENTS)
    possible = venues.alert_possible(hl, config.min_alert_usd)
    days = calm_days = 0.0
    calm_possible = all_possible = 0
    print(f"[other-venues] Hyperliquid: {len(hl)} rows, side unknown (0xArchive 'S' on all)")
    for market, (first, last) in sorted(venues.windows(hl).items()):
        span_d = (last - first) / 86_400_000
        days += span_d
        spans = possible[market]
        all_possible += len(spans)
        minutes = heavy[market]
        calm = venues.calm_spans((first, last), [_near(m * 60_000, m * 60_000) for m in minutes])
        calm_h = sum(hi - lo for lo, hi in calm) / 3_600_000
        calm_days += calm_h / 24
        touching = venues.overlapping(spans, calm)
        calm_possible += touching
        print(
            f"  {market}: {_utc(first)} -> {_utc(last)} ({span_d * 24:.1f} h), "
            f"{sum(r.market == market for r in hl)} rows: {len(minutes)} minutes heavy with both "
            f"sides pooled; calm whatever the sides: {calm_h:.1f} h; {len(spans)} spans where "
            f"an alert could start (pooled 90 s >= ${config.min_alert_usd:,.0f}), {touching} "
            f"of them in calm time"
        )
    print(
        f"  Hyperliquid: {days:.2f} market-days, {all_possible} spans where an alert could "
        f"start; calm whatever the sides: {calm_days:.2f} market-days, {calm_possible} spans "
        f"there where one could start (a bound: no calm false alarm outside them)"
    )
    print("[other-venues] bursts (>= 5 rows, gaps <= 60 s) whose price rose / fell, per label:")
    moves = venues.burst_moves([*okx, *hl])
    for (market, side), (up, down) in sorted(moves.items(), key=lambda kv: kv[0][::-1]):
        venue = "Hyperliquid" if side == venues.UNKNOWN else "OKX"
        label = "'S'" if side == venues.UNKNOWN else f"{side}s"
        print(f"  {venue} {market} {label}: {up} rose, {down} fell")


def heavy_rule(threshold: float, wave: Definition) -> str:
    """The heavy-minute rule in force, as the reports' first line states it."""
    source = f"the Binance files' pooled p{HEAVY_PERCENTILE:g} of market-side minutes"
    if wave == "pooled":
        return f"heavy minute: >= ${threshold:,.0f} in >= {HEAVY_MIN_EVENTS} events ({source})"
    return (
        f"heavy minute (relative): >= ${threshold:,.0f} ({source}), raised to "
        f"{RELATIVE_K:g} x the median of the market-side's active minutes in the "
        f"{RELATIVE_WINDOW_MIN} min before when it had >= {RELATIVE_MIN_HISTORY}, in >= "
        f"{MIN_SECONDS} distinct seconds"
    )


def wave_counts(found: list[Wave]) -> str:
    """How many waves per market and their heavy minutes' median notional."""
    per_market = Counter(w.market for w in found)
    markets = ", ".join(f"{m} {n}" for m, n in sorted(per_market.items()))
    return f"{len(found)} waves ({markets or 'none'}), median wave {_median_k(found)}"


def _median_k(found: list[Wave]) -> str:
    import statistics

    return f"${statistics.median(w.usd for w in found) / 1e3:,.0f}k" if found else "-"


def _near(first_ts: int, end_ts: int) -> tuple[int, int]:
    """The time around a wave (or a heavy minute) that ``away_from_waves`` calls near it."""
    return first_ts - ALERT_BEFORE_MS - 300_000, end_ts + 300_000


def _utc(ms: int) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%m-%d %H:%M")


def _definition(name: str) -> Definition:
    if name == "relative":
        return "relative"
    if name == "pooled":
        return "pooled"
    raise SystemExit(f"--wave must be one of {DEFINITIONS}, got {name!r}")


def main() -> None:
    import sys

    args = sys.argv[1:]
    sets = [a.split("=", 1) for a in args if "=" in a and not a.startswith("--")]
    if "--venues" in args:
        # --oi=MODE as --goals; FIELD=NUMBER sets a CascadeConfig field.
        opts = dict(
            a.removeprefix("--").split("=", 1) for a in args if a.startswith("--") and "=" in a
        )
        other_venues(
            CascadeConfig(**{k: float(v) for k, v in sets}),
            opts.get("oi", "none"),
            _definition(opts.get("wave", "pooled")),
        )
        return
    if "--goals" in args:
        # --oi=MODE, --split=tuning|evaluation|held-out|all, --trace, --from-wave=SECONDS;
        # FIELD=NUMBER sets a CascadeConfig
        # field, as bench/cascade_eval.py's --set (e.g. move_gain=0: no price term).
        opts = dict(
            a.removeprefix("--").split("=", 1) for a in args if a.startswith("--") and "=" in a
        )
        goals(
            CascadeConfig(**{k: float(v) for k, v in sets}),
            oi_mode=opts.get("oi", "none"),
            split_only=opts.get("split", "all"),
            trace="--trace" in args,
            from_wave_s=float(opts["from-wave"]) if "from-wave" in opts else None,
            wave=_definition(opts.get("wave", "pooled")),
        )
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
