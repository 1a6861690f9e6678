"""Issue 20's real-data timing goal: what holds the started alert back, and the ceiling.

    .venv/bin/python bench/cascade_real_ceiling.py                 # the Binance tuning files
    .venv/bin/python bench/cascade_real_ceiling.py --okx           # OKX's pages (a second look)
    .venv/bin/python bench/cascade_real_ceiling.py --split=evaluation   # once a rule is fixed
    nice -n 10 .venv/bin/python bench/cascade_real_ceiling.py --sim 7   # the rules on a seed

Waves, heavy minutes, calm sessions and the alert delay are ``bench/cascade_real.py --goals``'
(the pooled bar, $30,468 in >= 3 events); nothing here changes them.

**What holds the engine back.** Per wave, the engine's score terms (``cascade_real.terms_of``)
at every event of the wave's market and side from 90 s before its first heavy liquidation
(the alert delay counts a started alert from then) to 60 s after it (the goal). An alert
starts on an event when four things hold: the terms' sum (pace + move, or pace + size with
open interest) reaches 6.5, the count cap (1.5 x events in the 90 s window) and the level cap
(5 + price levels - 1) do too, and the window holds ``min_alert_usd`` ($25k); and the market
and side is not cooling down after its last cascade. The event failing the fewest of them is
the wave's nearest miss, and what it fails is what held the alert back.

**The ceiling.** Alert rules that read the same stream (market, side, notional, time):
``minute`` fires on the event that brings its market and side's calendar minute to the bar in
>= 3 events: the wave definition itself, so it starts within 60 s of every wave's first heavy
liquidation and never in a calm session (a calm session has no heavy minute); ``trailing W``
fires when the trailing W seconds hold the bar in >= 3 events. A rule's alert starts at a
firing event with no firing in the 60 s before it and ends 60 s after its last firing. The
ceiling is the most waves within 60 s that any of them reaches with 0 alerts in the calm
sessions (``--okx``: in calm time). ``--sim SEED`` replays the same rules on a simulator
recording of ``bench/cascade_eval.py`` (48 h, crash episode at 12 h; the cache it fills) and
judges them as it judges the engine: precision, recall and the goals against the wave truth.
"""

from __future__ import annotations

import sys
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import cascade_real as real
from cascade_real_waves import Wave, heavy_threshold, waves
from purpleflea.engine import CascadeConfig
from purpleflea.model import CascadeAlert

#: The alert delay's goal and how far before a wave a started alert still counts (cascade_real).
GOAL_MS = int(real.GOAL_DELAY_S * 1000)
#: A rule's alert ends this long after its last firing event; a new one may start after that.
RULE_QUIET_MS = 60_000
MIN_EVENTS = 3


@dataclass(frozen=True)
class RuleAlert:
    """A rule's alert, with the fields ``cascade_real.alert_delay_s`` and ``away_from_waves``
    read from the engine's :class:`CascadeAlert`."""

    id: str
    market: str
    side: str
    status: str
    updated_at: int


Alert = CascadeAlert | RuleAlert


def rule_alerts(rows: Iterable[real.Row], bar: float, window_s: float | None) -> list[RuleAlert]:
    """The started and exhausted alerts of a dollar-bar rule over ``rows`` (time order):
    ``window_s`` None is the calendar minute (the wave definition), else the trailing window.
    Causal: whether an event fires reads only it and the events before it."""
    recent: dict[tuple[str, str], deque[tuple[int, float]]] = {}
    last_fire: dict[tuple[str, str], int] = {}
    out: list[RuleAlert] = []
    width = None if window_s is None else int(window_s * 1000)
    for r in rows:
        key = (r.market, r.side)
        q = recent.setdefault(key, deque())
        q.append((r.ts, r.size_usd))
        if width is None:
            minute = r.ts // 60_000
            while q[0][0] // 60_000 != minute:
                q.popleft()
        else:
            while q[0][0] <= r.ts - width:
                q.popleft()
        if len(q) < MIN_EVENTS or sum(u for _, u in q) < bar:
            continue
        before = last_fire.get(key)
        if before is None or r.ts - before > RULE_QUIET_MS:
            if before is not None:
                out.append(RuleAlert(_id(key, before), *key, "exhausted", before + RULE_QUIET_MS))
            out.append(RuleAlert(_id(key, r.ts), *key, "started", r.ts))
        last_fire[key] = r.ts
    return out


def _id(key: tuple[str, str], ts: int) -> str:
    return f"{key[0]}:{key[1]}:{ts}"


def rule_spans(alerts: list[RuleAlert], end: int) -> list[tuple[str, str, int, int]]:
    """(market, side, started, exhausted) of each rule alert, as ``cascade_eval.replay``."""
    opened: dict[tuple[str, str], int] = {}
    spans: list[tuple[str, str, int, int]] = []
    for a in alerts:
        key = (a.market, a.side)
        if a.status == "started":
            opened[key] = a.updated_at
        else:
            spans.append((a.market, a.side, opened.pop(key), a.updated_at))
    spans += [(m, s, at, end) for (m, s), at in opened.items()]
    return spans


#: The rules whose ceiling is measured: the calendar minute, and trailing windows at the bar
#: and above it (a higher bar trades waves for calm alerts).
RULES: tuple[tuple[str, float, float | None], ...] = (
    ("minute (the wave definition)", 1.0, None),
    ("trailing 60 s", 1.0, 60.0),
    ("trailing 90 s", 1.0, 90.0),
    ("trailing 60 s, 1.5x bar", 1.5, 60.0),
    ("trailing 60 s, 2x bar", 2.0, 60.0),
    ("trailing 90 s, 1.5x bar", 1.5, 90.0),
)


# -- what holds the engine back ------------------------------------------------------------


def conditions(t: real.Terms, config: CascadeConfig) -> list[str]:
    """What keeps an event with terms ``t`` from starting an alert (empty: it starts one, or
    one is already active)."""
    need = config.start_score - 0.5
    out = []
    if t.raw < need:
        out.append(f"sum {t.raw:+.1f} (pace {t.rate:+.1f}, {_size_name(t)} {t.size:+.1f})")
    if t.count_cap < need:
        out.append(f"count cap {t.count_cap:.1f} ({t.win_n} events)")
    if t.level_cap < need:
        out.append(f"level cap {t.level_cap:.0f} ({t.levels} levels)")
    if t.win_usd < config.min_alert_usd:
        out.append(f"floor (window ${t.win_usd / 1e3:.1f}k)")
    if t.cooling:
        out.append("cooldown")
    return out


def _size_name(t: real.Terms) -> str:
    return "size" if t.move is None else f"move {t.move * 100:+.2f}%"


def nearest_miss(
    w: Wave, traced: Sequence[tuple[real.Row, int, real.Terms]], config: CascadeConfig
) -> tuple[float, list[str], real.Terms] | None:
    """The wave's event (from 90 s before its first heavy liquidation to 60 s after) that
    fails the fewest conditions (the latest of equals): seconds after the wave's start, what
    it fails, its terms; None when the market and side has no event then."""
    best: tuple[float, list[str], real.Terms] | None = None
    for r, _, t in traced:
        if not w.first_ts - real.ALERT_BEFORE_MS <= r.ts <= w.first_ts + GOAL_MS:
            continue
        fails = conditions(t, config)
        if best is None or len(fails) <= len(best[1]):
            best = ((r.ts - w.first_ts) / 1000.0, fails, t)
    return best


def first_seven(
    w: Wave, traced: Sequence[tuple[real.Row, int, real.Terms]], start_score: int = 7
) -> tuple[float, real.Terms] | None:
    """The first event from 90 s before the wave to 60 s after that scores ``start_score``
    or more (seconds after the wave's start, its terms), or None."""
    for r, s, t in traced:
        if w.first_ts - real.ALERT_BEFORE_MS <= r.ts <= w.first_ts + GOAL_MS and s >= start_score:
            return (r.ts - w.first_ts) / 1000.0, t
    return None


@dataclass
class Tally:
    """One rule's goals over a split: waves within 60 s, calm alerts, alerts away from waves."""

    waves: int = 0
    met: int = 0
    calm: int = 0
    away: int = 0
    started: int = 0

    def line(self, name: str, calm_what: str) -> str:
        return (
            f"  {name}: {self.met} of {self.waves} waves within {real.GOAL_DELAY_S:g} s; "
            f"{self.calm} alerts {calm_what}; {self.away} away from every wave; "
            f"{self.started} alerts started"
        )


def _delay_met(w: Wave, alerts: Sequence[Alert]) -> tuple[float | None, bool]:
    d = real.alert_delay_s(w, alerts)  # type: ignore[arg-type]
    return d, d is not None and d <= real.GOAL_DELAY_S


def binance(split: str, config: CascadeConfig) -> None:
    """Per wave of ``split``'s sessions: the engine's nearest miss; then each rule's goals."""
    shared = real.SHARED / "data" / "real"
    all_sessions = [
        (name, s_split, s)
        for name, s_split in real.recordings()
        for s in real.sessions(real.load(shared / name, 0, 1 << 62))
    ]
    threshold = heavy_threshold([s for name, _, s in all_sessions if name in real.FILES])
    print(f"bar ${threshold:,.0f} in >= {MIN_EVENTS} events; split {split}")
    engine_tally = Tally()
    tallies = {name: Tally() for name, _, _ in RULES}
    either = {name: Tally() for name, _, _ in RULES}
    for name, s_split, rows in all_sessions:
        if s_split != split:
            continue
        tracer = real.Tracer(config)
        _, alerts = real.score(rows, config, None, tracer)
        started = [a for a in alerts if a.status == "started"]
        found = waves(rows, threshold)
        t0 = rows[0].ts
        print(f"[{split}] {name.split('/')[0]} {real._utc(t0)}: {len(found)} waves")
        by_rule = {rname: rule_alerts(rows, k * threshold, window) for rname, k, window in RULES}
        for rname, ralerts in by_rule.items():
            _tally(tallies[rname], found, ralerts)
            _tally(either[rname], found, [*alerts, *ralerts])
        _tally(engine_tally, found, alerts)
        for w in found:
            d, _ = _delay_met(w, alerts)
            miss = nearest_miss(w, tracer.terms.get((w.market, w.side), []), config)
            verdict = "no started alert" if d is None else f"started alert {d:.1f} s"
            print(
                f"  wave {w.market} {w.side}s at {(w.first_ts - t0) / 60_000:5.1f} min "
                f"(${w.usd / 1e3:,.0f}k, {real.positions_in(w, rows)} levels): {verdict}"
            )
            seven = first_seven(w, tracer.terms.get((w.market, w.side), []))
            if seven is not None:
                floor = config.min_alert_usd / 1e3
                print(
                    f"    score >= {config.start_score} first at {seven[0]:+.1f} s, window "
                    f"${seven[1].win_usd / 1e3:.1f}k (the alert waits for ${floor:.0f}k)"
                )
            if miss is not None:
                at, fails, t = miss
                held = "; ".join(fails) or "nothing: it starts (or one is active) here"
                print(
                    f"    nearest miss in the first 60 s at {at:+.1f} s: pace {t.rate:+.2f}, "
                    f"{_size_name(t)} {t.size:+.2f}, sum {t.raw:+.2f}, caps count "
                    f"{t.count_cap:.1f} level {t.level_cap:.0f}, window ${t.win_usd / 1e3:.1f}k"
                    f" -> held by: {held}"
                )
            for rname, ralerts in by_rule.items():
                rd, _ = _delay_met(w, ralerts)
                print(f"    rule {rname}: {'none' if rd is None else f'{rd:.1f} s'}")
        if not found:
            print(f"  calm: engine {len(started)} alerts")
    print(f"{split}: goals by each alert rule (calm sessions as --goals)")
    print(engine_tally.line("engine", "in calm sessions"))
    for rname, tally in tallies.items():
        print(tally.line(f"rule {rname}", "in calm sessions"))
    for rname, tally in either.items():
        print(tally.line(f"engine or rule {rname}", "in calm sessions (at most)"))


def _tally(tally: Tally, found: list[Wave], alerts: Sequence[Alert]) -> None:
    started = [a for a in alerts if a.status == "started"]
    tally.started += len(started)
    tally.waves += len(found)
    tally.met += sum(_delay_met(w, alerts)[1] for w in found)
    if not found:
        tally.calm += len(started)
    else:
        tally.away += len(real.away_from_waves(started, found))  # type: ignore[arg-type]


def okx(config: CascadeConfig) -> None:
    """OKX's pages (a second look: never tuned on): per wave, the engine's nearest miss
    summarised by what holds it back; then each rule's goals, calm time as ``--venues``."""
    import cascade_real_venues as venues

    shared = real.SHARED / "data" / "real"
    threshold = heavy_threshold(
        [s for name in real.FILES for s in real.sessions(real.load(shared / name, 0, 1 << 62))]
    )
    rows = [real.Row(*x) for x in venues.load(shared / venues.KNX_LIQUIDATIONS, "okx")]
    found = waves(rows, threshold)
    tracer = real.Tracer(config)
    _, alerts = real.score(rows, config, None, tracer, exchange="okx")
    held: dict[str, int] = {}
    single: dict[str, int] = {}
    near: list[real.Terms] = []
    met = 0
    for w in found:
        d, ok = _delay_met(w, alerts)
        met += ok
        if ok:
            continue
        miss = nearest_miss(w, tracer.terms.get((w.market, w.side), []), config)
        fails = ["no event"] if miss is None else [f.split(" ")[0] for f in miss[1]]
        if miss is not None:
            near.append(miss[2])
        if not fails:
            fails = ["started late" if d is not None else "active elsewhere"]
        for f in fails:
            held[f] = held.get(f, 0) + 1
        key = " + ".join(fails)
        single[key] = single.get(key, 0) + 1
    print(f"OKX: {len(found)} waves (bar ${threshold:,.0f}), engine within 60 s: {met}")
    print("  what the nearest miss in each missed wave's first 60 s fails (any of):")
    for k, n in sorted(held.items(), key=lambda kv: -kv[1]):
        print(f"    {k}: {n}")
    print("  ... and the exact combinations:")
    for k, n in sorted(single.items(), key=lambda kv: -kv[1]):
        print(f"    {k}: {n}")
    if near:
        import statistics

        clipped = sum(t.move is not None and t.size <= -config.move_clip for t in near)
        print(
            f"  the missed waves' nearest misses: pace median "
            f"{statistics.median(t.rate for t in near):+.2f}, move term median "
            f"{statistics.median(t.size for t in near):+.2f} ({clipped} of {len(near)} at its "
            f"-{config.move_clip:g} clip: the latest price on the far side of the window's "
            f"oldest), sum median {statistics.median(t.raw for t in near):+.2f}, levels median "
            f"{statistics.median(t.levels for t in near):g}"
        )
    calm: dict[str, list[tuple[int, int]]] = {}
    for market, window in venues.windows(rows).items():
        mine = [real._near(w.first_ts, w.end_ts) for w in found if w.market == market]
        calm[market] = venues.calm_spans(window, mine)
    days = sum(hi - lo for spans in calm.values() for lo, hi in spans) / 86_400_000
    print(f"  calm time {days:.2f} market-days")
    lines: list[tuple[str, Sequence[Alert]]] = [("engine", alerts)]
    lines += [
        (f"rule {rname}", rule_alerts(rows, k * threshold, window)) for rname, k, window in RULES
    ]
    for name, got in lines:
        started = [a for a in got if a.status == "started"]
        met = sum(_delay_met(w, got)[1] for w in found)
        tally = Tally(waves=len(found), met=met, started=len(started))
        tally.calm = sum(
            any(lo <= a.updated_at <= hi for lo, hi in calm[a.market]) for a in started
        )
        tally.away = len(real.away_from_waves(started, found))  # type: ignore[arg-type]
        print(tally.line(name, "in calm time"))


def simulator(seed: int) -> None:
    """Each rule replayed on a simulator seed and judged as ``bench/cascade_eval.py`` judges
    the engine (the wave truth; precision, recall, the goals)."""
    import numpy as np

    import cascade_eval as ev

    rec = ev.cached(seed, 48.0, fuel=False, crash_at_h=12.0)
    judged, known = ev.truth_of(rec, seed, "wave")
    names = rec.names
    rows = [
        real.Row(names[m], "long" if s > 0 else "short", u, p, t)
        for m, s, u, p, t in zip(
            rec.markets.tolist(),
            rec.sides.tolist(),
            rec.sizes.tolist(),
            rec.prices.tolist(),
            rec.ts.tolist(),
            strict=True,
        )
    ]
    shared = real.SHARED / "data" / "real"
    threshold = heavy_threshold(
        [s for name in real.FILES for s in real.sessions(real.load(shared / name, 0, 1 << 62))]
    )
    print(
        f"seed {seed}: {len(rows):,} events, {len(judged.truth)} waves (truth wave); "
        f"bar ${threshold:,.0f}"
    )
    dummy = np.zeros(rec.ts.size, dtype=np.int8)  # the rules give no score: AUC means nothing
    for rname, k, window in RULES:
        spans = rule_spans(rule_alerts(rows, k * threshold, window), 1 << 62)
        # The engine hears every market's open interest after the first round of snapshots: a
        # rule only while it is unknown (the move term's place) would keep only these alerts.
        first_oi = int(rec.snap_ts[0]) if rec.snap_ts.size else 1 << 62
        early = sum(start <= first_oi for _, _, start, _ in spans)
        print(f"[rule {rname}] {early} alerts start before the first open interest round")
        r = ev.evaluate(judged, dummy, spans)
        print(
            f"[rule {rname}] alerts {r['alerts']:.0f} precision {r['precision']:.3f} "
            f"recall {r['recall']:.3f}",
            flush=True,
        )
        ev.report_goals(judged, spans, known)


def main() -> None:
    args = sys.argv[1:]
    opts = dict(a.removeprefix("--").split("=", 1) for a in args if "=" in a)
    sets = {k: float(v) for k, v in opts.items() if k in CascadeConfig.__dataclass_fields__}
    config = CascadeConfig(**sets)  # type: ignore[arg-type]
    if "--sim" in args:
        simulator(int(args[args.index("--sim") + 1]))
    elif "--okx" in args:
        okx(config)
    else:
        binance(opts.get("split", "tuning"), config)


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    main()
