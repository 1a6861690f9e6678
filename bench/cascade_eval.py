"""Cascade engine vs the simulator's true cascades: precision, recall, lead time, AUC.

    .venv/bin/python bench/cascade_eval.py --seed 3 --hours 240          # held-out report
    .venv/bin/python bench/cascade_eval.py --seed 1 --hours 240 --grid   # tune (a tuning seed)
    .venv/bin/python bench/cascade_eval.py --seed 10 --hours 48 --crash-at 12 --truth all

Seeds 1 and 2 are the tuning seeds (the engine's defaults were chosen on them); 3 and 4 were
held out until the defaults were fixed; 5 and 6 were run once afterwards, all on the simulator
before issue 20 (its rebuild changed every seed's stream). On the rebuilt simulator seeds 7 and
8 chose the defaults (``oi_ref``, the wave definition was fixed before), 9 was checked once
with an earlier sweep, and 10 and up are fresh. 10-12 were run once on the simulator of commit
8be0638, 13-15 once on the one after issue 20's market structure (commit 7cfd598), 16-18 once
after its timing work (2026-12-05), 19-21 once after the recall sweep on 7 and 8 kept the
defaults (2026-12-05), 22-24 once for the open-interest memory, 25-27 once after the
cross-margin accounts, 28-30 once after the baseline fix, 31-33 once after the lagged
baseline (both 2026-12-06), 34-41 once on the simulator with venue price kinds (2026-12-06),
42-47 once for the seed split (2026-12-08, with ``--oi-level-oracle``); 48 and up are unused.
The report says which kind of seed it ran on.

``--truth`` says what a true cascade is (``sim/truth.py``; docs/cascade.md, "What a cascade
is"): ``wave`` (the default): a run of one market and side in which some minute sweeps the
simulator's share of the 1 % depth (``cascade_min_depth``) in liquidations in at least three
distinct seconds, impact-driven or not, as the real-data evaluation's waves; ``positions``:
the same over three positions; ``impact``: the simulator's own truth (two impact-driven
positions), the definition before issue 20; ``all`` judges one replay by each. The old truth
is a subset of both others.

``--crash-at H`` schedules the simulator's crash episode (``sim/crash.py``, 45 min of waves)
H hours into the run, as ``purpleflea serve`` does at its start. Besides precision and recall
the report gives issue 20's cascade goals: how long after the earliest knowable moment the
alert comes, the share of the cascade's notional still ahead at the alert, and false alarms
per market-week in calm time (outside the crash episode and the hour after it; a false alarm
is by definition outside every true cascade of its market and side).

The engine gets what a live server gets, in time order: the events, a ``tick`` every second,
and after each 60 s round of ``SimStep.snapshots`` every market's open interest
(``set_open_interest``) and, with ``--fuel``, the fuel ratios of the server's ``HeatmapFeed``.
Recordings are cached under /tmp per seed, hours and a digest of the simulator's source (with
the venues' declared price kinds, which price its events; with ``--fuel``, the heatmap's too),
so a changed simulator never reuses an old recording.

The simulator before issue 20 had ~2-9 true cascades a day over 275 markets, so 240 simulated
hours (10 days, ~1-1.5M events) gave 25-90. The rebuilt one, with ``--crash-at 12`` over 48 h,
has 60-111 impact-driven cascades per seed (1-5 of them outside the crash episode) and
188-298 waves (25-51 outside it).

Detection: a true cascade (market, side, start..end) is detected when a ``started`` alert of
that market and side fires in [start, end + 10 s], or one is already active at its start.
An alert is a true positive when it starts inside a true cascade of its market and side
(start - 90 s .. end + 10 s: the engine may rightly fire on the run's first events).
Lead time is alert time minus the true start. AUC: for every event, the score against "a true
cascade of this market and side has events in the next 5 minutes".
"""

from __future__ import annotations

import argparse
import bisect
import hashlib
import itertools
import pickle
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

import purpleflea
from purpleflea.engine import CascadeConfig, CascadeEngine
from purpleflea.engine.heatmap_feed import HeatmapFeed
from purpleflea.model import MarketSnapshot, Side
from purpleflea.sim import crash
from purpleflea.sim.config import DEFAULT_START_MS
from purpleflea.sim.events import NO_RUN
from purpleflea.sim.process import SimConfig, SimStep, Simulator
from purpleflea.sim.truth import (
    Definition,
    LiquidationStream,
    TrueCascade,
    first_wave_moment,
    merge_cascades,
    wave_cascades,
    wave_units,
)
from purpleflea.venues import registry

MATCH_BEFORE_MS = 90_000
#: Time after the crash episode's end still counted as the crash (its aftershocks), not calm.
CRASH_TAIL_MS = 3_600_000
WEEK_H = 168.0
MATCH_AFTER_MS = 10_000
HORIZON_MS = 300_000


@dataclass
class Recording:
    markets: np.ndarray
    sides: np.ndarray
    ts: np.ndarray
    sizes: np.ndarray
    prices: np.ndarray
    exchanges: list[str]
    names: tuple[str, ...]
    truth: list[TrueCascade]
    snap_ts: np.ndarray  # [K] time of each round of snapshots (every 60 s)
    snap_oi: np.ndarray  # [K, markets] open interest in USD, summed over the market's listings
    fuel: np.ndarray | None = None  # [K, markets, 2] HeatmapFeed's fuel ratio (long, short)
    cohorts: np.ndarray | None = None  # the simulator's cohort id of each event (for analysis)
    crash_start_ms: int | None = None  # the scheduled crash episode, if any
    #: Per event: a cross-margin account's close (sim.accounts; part of no run), for ablation.
    accounts: np.ndarray | None = None


def sim_config(seed: int, crash_at_h: float | None) -> SimConfig:
    """The simulator of a seed, with its crash episode ``crash_at_h`` hours in (or none)."""
    if crash_at_h is None:
        return SimConfig(seed=seed)
    return SimConfig(seed=seed, crash_start_ms=DEFAULT_START_MS + int(crash_at_h * 3_600_000))


def record(
    seed: int, hours: float, *, fuel: bool = False, crash_at_h: float | None = None
) -> Recording:
    """Run the simulator through its public stream (``SimStep``) and keep events and snapshots
    as arrays (so a grid replays without re-simulating). With ``fuel`` every snapshot and
    liquidation price also goes through the server's :class:`HeatmapFeed` (the prices as the
    server's pipeline passes them: fills, and a market's other prices until it has had a fill)
    and the fuel ratios it hands the engine are recorded (they depend only on the stream, not
    on the engine)."""
    config = sim_config(seed, crash_at_h)
    sim = Simulator(config)
    names = sim.market_names
    index = {name: i for i, name in enumerate(names)}
    cols: dict[str, list[float]] = {k: [] for k in ("m", "s", "t", "u", "p", "c")}
    exchanges: list[str] = []
    snap_ts: list[int] = []
    snap_oi: list[np.ndarray] = []
    fuels: list[np.ndarray] = []
    sink = _FuelRecorder(index)
    feed = HeatmapFeed(fuel=sink) if fuel else None
    fills, filled = registry.fill_priced(), set[str]()
    accounts: list[np.ndarray] = []
    end = sim.now_ms + int(hours * 3_600_000)
    for step in _steps_until(sim, end, accounts):
        for e in step.liquidations:
            assert e.size_usd is not None
            assert e.ts is not None
            cols["m"].append(index[e.market])
            cols["s"].append(1 if e.side == "long" else -1)
            cols["t"].append(e.ts)
            cols["u"].append(e.size_usd)
            cols["p"].append(e.price)
            cols["c"].append(int((e.liquidated_user or "cohort--1").rsplit("-", 1)[1]))
            exchanges.append(e.exchange)
            if feed is not None:
                # A bankruptcy price past the market would sweep positions it never reached.
                fill = e.exchange in fills
                if fill or e.market not in filled:
                    feed.note_price(e.market, e.price)
                if fill:
                    filled.add(e.market)
        if step.snapshots:
            oi = np.zeros(len(names))
            coins = np.zeros(len(names))
            marks: dict[int, float] = {}
            for snap in step.snapshots:
                m = index[snap.market]
                oi[m] += snap.open_interest_usd
                coins[m] += snap.open_interest
                marks.setdefault(m, snap.mark_price)
            if feed is not None:
                # One instrument per market: the simulator splits a market's open interest over
                # its listings in fixed shares at one mark (2 bp apart), so the heatmap of the
                # sum is the sum of the listings' heatmaps, at a sixth of the cost.
                for m, mark in marks.items():
                    feed.on_snapshot(
                        MarketSnapshot(
                            exchange="sim",
                            symbol=names[m],
                            market=names[m],
                            ts=step.ts,
                            mark_price=mark,
                            open_interest=float(coins[m]),
                            open_interest_usd=float(oi[m]),
                        )
                    )
            snap_ts.append(step.ts)
            snap_oi.append(oi)
            if feed is not None:
                fuels.append(sink.ratios.copy())
    return Recording(
        np.asarray(cols["m"], dtype=np.int64),
        np.asarray(cols["s"], dtype=np.int64),
        np.asarray(cols["t"], dtype=np.int64),
        np.asarray(cols["u"], dtype=np.float64),
        np.asarray(cols["p"], dtype=np.float64),
        exchanges,
        names,
        sim.truth.cascades(),  # those known to be over by the end of the run
        np.asarray(snap_ts, dtype=np.int64),
        np.vstack(snap_oi),
        np.stack(fuels) if fuels else None,
        np.asarray(cols["c"], dtype=np.int64),
        config.crash_start_ms,
        np.concatenate(accounts) if accounts else np.zeros(0, dtype=bool),
    )


def _steps_until(sim: Simulator, end: int, accounts: list[np.ndarray]) -> Iterator[SimStep]:
    """``sim.run``'s steps up to ``end``, noting per block which events are accounts' closes
    (a block's steps carry its events in the block's order)."""
    while True:
        raw = sim.next_block()
        accounts.append(raw.run == NO_RUN)
        for step in sim.block_steps(raw):
            yield step
            if step.ts >= end:
                return


def without_accounts(rec: Recording) -> Recording:
    """The recording less the accounts' closes (the stream the cohorts alone make)."""
    if rec.accounts is None or rec.accounts.size != rec.ts.size:
        raise SystemExit("recorded before accounts were kept: delete the cache")
    keep = ~rec.accounts
    return replace(
        rec,
        markets=rec.markets[keep],
        sides=rec.sides[keep],
        ts=rec.ts[keep],
        sizes=rec.sizes[keep],
        prices=rec.prices[keep],
        exchanges=[x for x, k in zip(rec.exchanges, keep.tolist(), strict=True) if k],
        cohorts=None if rec.cohorts is None else rec.cohorts[keep],
        accounts=rec.accounts[keep],
    )


#: The open interest over the market's size (``MarketSpec.oi_usd``) that ``--oi-level-oracle``
#: sets every market to at its first snapshot: about the median over seeds 7, 8 and 28-41.
OI_LEVEL_REF = 0.65


def without_oi_level(rec: Recording, seed: int) -> Recording:
    """The recording with each market's open interest rescaled so that its first snapshot is
    :data:`OI_LEVEL_REF` times the market's size (its falls and rises after that kept). An oracle
    for diagnosis (docs/cascade.md, "The seed split"): the simulator's open-interest level (a
    slow walk with a part common to all markets) moves a seed's open interest against its
    fixed depth, which sets the true cascades' bar; no live engine knows the size."""
    size = np.array([m.oi_usd for m in Simulator(SimConfig(seed=seed)).markets])
    first = rec.snap_oi[0]
    scale = np.where(first > 0, OI_LEVEL_REF * size / np.where(first > 0, first, 1.0), 1.0)
    return replace(rec, snap_oi=rec.snap_oi * scale[None, :])


class _FuelRecorder:
    """A FuelSink that keeps the latest ratio per market and side."""

    def __init__(self, index: dict[str, int]) -> None:
        self.index = index
        self.ratios = np.ones((len(index), 2))

    def set_fuel(self, market: str, side: Side, ratio: float) -> None:
        self.ratios[self.index[market], 0 if side == "long" else 1] = ratio

    def set_open_interest(self, market: str, usd: float, instrument: str = "") -> None:
        """Recorded separately (``snap_oi``), from the snapshots themselves."""


def source_digest(*, fuel: bool) -> str:
    """A digest of the code a recording depends on: the simulator (with the venues' declared
    price kinds, which decide each event's price), and the heatmap with fuel."""
    package = Path(purpleflea.__file__).parent
    files = sorted((package / "sim").glob("*.py"))
    files += [package / "venues" / "registry.py", *sorted(package.glob("venues/*/constants.py"))]
    if fuel:
        files += [package / "engine" / "heatmap.py", package / "engine" / "heatmap_feed.py"]
    digest = hashlib.sha256()
    for path in files:
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def seed_kind(seed: int) -> str:
    if seed in (5, 6):
        return "fresh on the old simulator"
    if seed in (7, 8):
        return "tuning, new simulator"
    if seed == 9:
        return "checked once, new simulator"
    if seed >= 10:
        return "fresh, new simulator"
    return {1: "tuning", 2: "tuning", 3: "held out", 4: "held out"}.get(seed, "other")


def cached(seed: int, hours: float, *, fuel: bool, crash_at_h: float | None = None) -> Recording:
    """``record`` once per (seed, hours, fuel, crash, source digest), kept under /tmp."""
    crash = "" if crash_at_h is None else f"_crash{crash_at_h:g}"
    name = (
        f"cascade_eval_{seed}_{hours:g}{'_fuel' if fuel else ''}{crash}_{source_digest(fuel=fuel)}"
    )
    path = Path(tempfile.gettempdir()) / f"{name}.pkl"
    if path.exists():
        with path.open("rb") as f:
            return Recording(**pickle.load(f))
    rec = record(seed, hours, fuel=fuel, crash_at_h=crash_at_h)
    with path.open("wb") as f:  # the fields, so the cache loads whichever module runs this
        pickle.dump(vars(rec), f, protocol=pickle.HIGHEST_PROTOCOL)
    return rec


def replay(
    rec: Recording,
    config: CascadeConfig,
    *,
    use_oi: bool = True,
    fill_priced: frozenset[str] | None = None,
) -> tuple[np.ndarray, list[tuple[str, str, int, int]]]:
    """Scores of every event and (market, side, started, exhausted) of every alert.

    As live: ``tick`` every whole second the stream crosses, and each round of snapshots
    (open interest, fuel) handed to the engine after the events up to its time, never before.
    """
    engine = CascadeEngine(config, fill_priced=fill_priced)
    observe = engine.observe
    names = rec.names
    scores = np.empty(rec.ts.size, dtype=np.int8)
    opened: dict[str, tuple[str, str, int]] = {}
    spans: list[tuple[str, str, int, int]] = []

    def handle(alerts: list) -> None:  # type: ignore[type-arg]
        for a in alerts:
            if a.status == "started":
                opened[a.id] = (a.market, a.side, a.updated_at)
            elif a.status == "exhausted":
                market, side, at = opened.pop(a.id)
                spans.append((market, side, at, a.updated_at))

    snap_ts = rec.snap_ts.tolist()
    k = 0
    next_snap = snap_ts[0] if snap_ts else 1 << 62

    def apply(k: int) -> None:
        if use_oi:
            for m, usd in enumerate(rec.snap_oi[k].tolist()):
                engine.set_open_interest(names[m], usd)
        if rec.fuel is not None:
            for m, (long_ratio, short_ratio) in enumerate(rec.fuel[k].tolist()):
                engine.set_fuel(names[m], "long", long_ratio)
                engine.set_fuel(names[m], "short", short_ratio)

    second = int(rec.ts[0]) // 1000
    rows = zip(
        rec.markets.tolist(),
        rec.sides.tolist(),
        rec.sizes.tolist(),
        rec.prices.tolist(),
        rec.ts.tolist(),
        rec.exchanges,
        strict=True,
    )
    for i, (m, s, u, p, t, x) in enumerate(rows):
        while t > next_snap:
            apply(k)
            k += 1
            next_snap = snap_ts[k] if k < len(snap_ts) else 1 << 62
        if t // 1000 > second:
            for sec in range(second + 1, t // 1000 + 1):
                alerts = engine.tick(sec * 1000)
                if alerts:
                    handle(alerts)
            second = t // 1000
        scores[i] = observe(names[m], "long" if s > 0 else "short", u, p, t, x)
        if engine.has_alerts():
            handle(engine.drain_alerts())
    for market, side, at in opened.values():
        spans.append((market, side, at, 1 << 62))
    return scores, spans


def evaluate(
    rec: Recording, scores: np.ndarray, spans: list[tuple[str, str, int, int]]
) -> dict[str, float]:
    by_key: dict[tuple[str, str], list[TrueCascade]] = {}
    for c in rec.truth:
        by_key.setdefault((c.market, c.side), []).append(c)
    alerts_by_key: dict[tuple[str, str], list[tuple[int, int]]] = {}
    for market, side, start, end in spans:
        alerts_by_key.setdefault((market, side), []).append((start, end))
    for v in alerts_by_key.values():
        v.sort()
    # Precision.
    tp = 0
    for market, side, start, _ in spans:
        cs = by_key.get((market, side), [])
        if any(c.start_ms - MATCH_BEFORE_MS <= start <= c.end_ms + MATCH_AFTER_MS for c in cs):
            tp += 1
    # Recall and lead time.
    detected = 0
    leads: list[float] = []
    for c in rec.truth:
        alerts = alerts_by_key.get((c.market, c.side), [])
        starts = [a[0] for a in alerts]
        i = bisect.bisect_left(starts, c.start_ms)
        fired = i < len(alerts) and alerts[i][0] <= c.end_ms + MATCH_AFTER_MS
        active = i > 0 and alerts[i - 1][1] >= c.start_ms
        if fired or active:
            detected += 1
            leads.append(0.0 if active else (alerts[i][0] - c.start_ms) / 1000.0)
    # AUC of the score for "a true cascade of this market and side has events in (t, t+5 min]".
    label = np.zeros(rec.ts.size, dtype=bool)
    key = rec.markets * 2 + (rec.sides < 0)
    index = {name: i for i, name in enumerate(rec.names)}
    order = np.argsort(key, kind="stable")
    sorted_key = key[order]
    for c in rec.truth:
        k = index[c.market] * 2 + (c.side == "short")
        lo, hi = np.searchsorted(sorted_key, [k, k + 1])
        idx = order[lo:hi]
        t = rec.ts[idx]
        label[idx[(t < c.end_ms) & (t + HORIZON_MS > c.start_ms)]] = True
    auc = _auc(scores.astype(np.float64), label)
    return {
        "alerts": float(len(spans)),
        "true_cascades": float(len(rec.truth)),
        "precision": tp / len(spans) if spans else 0.0,
        "recall": detected / len(rec.truth) if rec.truth else 0.0,
        "lead_median_s": float(np.median(leads)) if leads else float("nan"),
        "lead_p90_s": float(np.percentile(leads, 90)) if leads else float("nan"),
        "auc_5min": auc,
    }


def stream_of(rec: Recording) -> LiquidationStream:
    assert rec.cohorts is not None, "recorded before cohort ids were kept: delete the cache"
    return LiquidationStream(
        rec.names, rec.markets, rec.sides, rec.ts, rec.sizes, rec.prices, rec.cohorts
    )


def wave_truth(
    rec: Recording, seed: int, *, definition: Definition = "wave"
) -> tuple[list[TrueCascade], dict[tuple[str, str, int], int]]:
    """The cascades by the wave definition (``sim/truth.py``'s :func:`wave_cascades`; docs/
    cascade.md, "What a cascade is"), joined with the simulator's own (impact-driven) true
    cascades by :func:`merge_cascades`, so the old truth is a subset of this one.
    ``definition="positions"``: the stricter variant (three positions instead of seconds).

    Also returns, per cascade (market, side, start), the earliest moment its definition is met
    from the stream (for the simulator's own cascades that do not meet it: their third
    position with the run's notional at the size, as :func:`knowable_s`)."""
    stream = stream_of(rec)
    config = SimConfig(seed=seed)
    depth = {m.name: m.depth_usd for m in Simulator(config).markets}
    min_depth = config.cascade_min_depth
    found = wave_cascades(
        stream, depth, min_depth=min_depth, gap_ms=config.cascade_gap_ms, definition=definition
    )
    merged = merge_cascades(rec.truth, found)
    index = {name: i for i, name in enumerate(rec.names)}
    old = knowable_s(replace(rec, truth=merged), seed)
    confirm: dict[tuple[str, str, int], int] = {}
    for c, fallback in zip(merged, old.tolist(), strict=True):
        sel = np.flatnonzero(
            (rec.markets == index[c.market])
            & (rec.sides == (1 if c.side == "long" else -1))
            & (rec.ts >= c.start_ms)
            & (rec.ts <= c.end_ms)
        )
        ts = rec.ts[sel]
        units = wave_units(stream, sel, definition)
        i = first_wave_moment(ts, rec.sizes[sel], units, min_depth * depth[c.market])
        at = int(ts[i]) if i >= 0 else c.start_ms + int(fallback * 1000)
        confirm[(c.market, c.side, c.start_ms)] = at
    return merged, confirm


def knowable_s(rec: Recording, seed: int) -> np.ndarray:
    """Per true cascade, a lower bound on when any detector could know it from the stream:
    seconds from its first event until its third position (cohort) has been liquidated and its
    notional has reached the definition's share of the market's depth. The definition needs two
    impact-driven positions, and the first is the shock, so no rule can confirm a cascade
    earlier (it can only guess)."""
    assert rec.cohorts is not None, "recorded before cohort ids were kept: delete the cache"
    depth = {m.name: m.depth_usd for m in Simulator(SimConfig(seed=seed)).markets}
    min_depth = SimConfig().cascade_min_depth
    index = {name: i for i, name in enumerate(rec.names)}
    out = []
    for c in rec.truth:
        sel = (
            (rec.markets == index[c.market])
            & (rec.sides == (1 if c.side == "long" else -1))
            & (rec.ts >= c.start_ms)
            & (rec.ts <= c.end_ms)
        )
        order = np.argsort(rec.ts[sel], kind="stable")
        ts, usd, cohort = rec.ts[sel][order], rec.sizes[sel][order], rec.cohorts[sel][order]
        _, first = np.unique(cohort, return_index=True)
        third = ts[np.sort(first)[min(2, first.size - 1)]]
        big = ts[
            min(int(np.searchsorted(np.cumsum(usd), min_depth * depth[c.market])), ts.size - 1)
        ]
        out.append((max(third, big) - c.start_ms) / 1000.0)
    return np.asarray(out)


def goals(
    rec: Recording, spans: list[tuple[str, str, int, int]], known: np.ndarray
) -> dict[str, float]:
    """Issue 20's cascade goals beyond precision and recall.

    Per detected true cascade (matched as in :func:`evaluate`; an alert already active at its
    start counts as an alert at its start): the alert's delay after the earliest knowable
    moment (``known``, from :func:`knowable_s`; negative when it came earlier) and the share
    of the cascade's notional liquidated after the alert. False alarms in calm time: alerts
    that are not true positives and start outside the crash episode (and
    :data:`CRASH_TAIL_MS` after it), per market and per week of that calm time.
    """
    alerts_by_key: dict[tuple[str, str], list[tuple[int, int]]] = {}
    for market, side, start, end in spans:
        alerts_by_key.setdefault((market, side), []).append((start, end))
    for v in alerts_by_key.values():
        v.sort()
    index = {name: i for i, name in enumerate(rec.names)}
    delays: list[float] = []
    ahead: list[float] = []
    for c, k in zip(rec.truth, known.tolist(), strict=True):
        alerts = alerts_by_key.get((c.market, c.side), [])
        starts = [a[0] for a in alerts]
        i = bisect.bisect_left(starts, c.start_ms)
        if i > 0 and alerts[i - 1][1] >= c.start_ms:
            at = c.start_ms
        elif i < len(alerts) and alerts[i][0] <= c.end_ms + MATCH_AFTER_MS:
            at = alerts[i][0]
        else:
            continue
        delays.append((at - c.start_ms) / 1000.0 - k)
        sel = (
            (rec.markets == index[c.market])
            & (rec.sides == (1 if c.side == "long" else -1))
            & (rec.ts >= c.start_ms)
            & (rec.ts <= c.end_ms)
        )
        usd, ts = rec.sizes[sel], rec.ts[sel]
        # An event at the alert's own millisecond is the one that fired it: already behind.
        ahead.append(float(usd[ts > at].sum() / usd.sum()) if usd.sum() > 0 else 0.0)
    by_key: dict[tuple[str, str], list[TrueCascade]] = {}
    for c in rec.truth:
        by_key.setdefault((c.market, c.side), []).append(c)
    hours = (int(rec.ts[-1]) - int(rec.ts[0])) / 3_600_000 if rec.ts.size else 0.0
    crash_lo = crash_hi = 0
    if rec.crash_start_ms is not None:
        crash_lo = rec.crash_start_ms
        crash_hi = rec.crash_start_ms + crash.DURATION_MS + CRASH_TAIL_MS
        lo, hi = max(crash_lo, int(rec.ts[0])), min(crash_hi, int(rec.ts[-1]))
        hours -= max(0, hi - lo) / 3_600_000
    false_calm = false_crash = true_calm = 0
    for market, side, start, _ in spans:
        cs = by_key.get((market, side), [])
        if any(c.start_ms - MATCH_BEFORE_MS <= start <= c.end_ms + MATCH_AFTER_MS for c in cs):
            true_calm += not crash_lo <= start < crash_hi
            continue
        if crash_lo <= start < crash_hi:
            false_crash += 1
        else:
            false_calm += 1
    # Recall outside the crash: true cascades that start in calm time, and how many were found.
    calm_truth = [c for c in rec.truth if not crash_lo <= c.start_ms < crash_hi]
    calm_found = 0
    for c in calm_truth:
        alerts = alerts_by_key.get((c.market, c.side), [])
        starts = [a[0] for a in alerts]
        i = bisect.bisect_left(starts, c.start_ms)
        fired = i < len(alerts) and alerts[i][0] <= c.end_ms + MATCH_AFTER_MS
        calm_found += fired or (i > 0 and alerts[i - 1][1] >= c.start_ms)
    market_weeks = len(rec.names) * hours / WEEK_H
    calm_alerts = true_calm + false_calm
    return {
        "calm_precision": true_calm / calm_alerts if calm_alerts else float("nan"),
        "calm_recall": calm_found / len(calm_truth) if calm_truth else float("nan"),
        "calm_true_cascades": float(len(calm_truth)),
        "crash_true_cascades": float(len(rec.truth) - len(calm_truth)),
        "delay_after_knowable_median_s": float(np.median(delays)) if delays else float("nan"),
        "delay_after_knowable_p90_s": float(np.percentile(delays, 90)) if delays else float("nan"),
        "ahead_median": float(np.median(ahead)) if ahead else float("nan"),
        "false_calm": float(false_calm),
        "false_crash": float(false_crash),
        "calm_hours": hours,
        "false_per_market_week": false_calm / market_weeks if market_weeks else float("nan"),
    }


def _auc(score: np.ndarray, label: np.ndarray) -> float:
    """Mann-Whitney AUC with ties counted half."""
    pos, neg = int(label.sum()), int((~label).sum())
    if not pos or not neg:
        return float("nan")
    ranks = np.empty(score.size)
    order = np.argsort(score, kind="mergesort")
    sorted_scores = score[order]
    # Average ranks for ties.
    _, first, counts = np.unique(sorted_scores, return_index=True, return_counts=True)
    avg = first + (counts + 1) / 2.0
    ranks[order] = np.repeat(avg, counts)
    return float((ranks[label].sum() - pos * (pos + 1) / 2.0) / (pos * neg))


GRID = {
    "oi_gain": [0.0, 2.0],
    "oi_ref": [0.003, 0.004, 0.006],
    "level_arm_ratio": [30.0, 100.0, 300.0],
    "level_gain": [1.0, 1.5],
}


#: The trade-off curve (``--curve``): alerts at three price levels (level_gain 1) or at two (1.5),
#: each over a range of the size term's reference share of open interest.
CURVE = [(1.0, r) for r in (0.001, 0.002, 0.003, 0.004, 0.006, 0.01)] + [
    (1.5, r) for r in (0.003, 0.006, 0.01, 0.02, 0.03)
]


def _setting(text: str) -> tuple[str, float]:
    key, _, value = text.partition("=")
    field = CascadeConfig.__dataclass_fields__.get(key)
    if field is None or not value:
        raise argparse.ArgumentTypeError(f"--set wants FIELD=NUMBER of CascadeConfig, got {text!r}")
    # Integer fields (window_buckets, start_score, ...) size lists: 36.0 would not do.
    return key, int(float(value)) if field.type in (int, "int") else float(value)


def truth_of(rec: Recording, seed: int, name: Definition) -> tuple[Recording, np.ndarray]:
    """``rec`` judged by one definition of a true cascade (``--truth``), with each cascade's
    earliest knowable moment in seconds after its start (empty without cohort ids)."""
    if name == "impact":
        if rec.cohorts is None or not rec.truth:
            return rec, np.zeros(0)
        return rec, knowable_s(rec, seed)
    waves, confirm = wave_truth(rec, seed, definition=name)
    judged = replace(rec, truth=waves)
    known = np.array(
        [(confirm[(c.market, c.side, c.start_ms)] - c.start_ms) / 1000.0 for c in waves]
    )
    return judged, known


def ahead_at_knowable(rec: Recording, known: np.ndarray) -> np.ndarray:
    """Per true cascade, the share of its notional liquidated after the earliest moment it can
    be confirmed (``known`` seconds after its start, as :func:`goals` measures "ahead" at an
    alert): what an alert exactly at confirmation would still have ahead of it."""
    index = {name: i for i, name in enumerate(rec.names)}
    out = []
    for c, k in zip(rec.truth, known.tolist(), strict=True):
        sel = (
            (rec.markets == index[c.market])
            & (rec.sides == (1 if c.side == "long" else -1))
            & (rec.ts >= c.start_ms)
            & (rec.ts <= c.end_ms)
        )
        usd, ts = rec.sizes[sel], rec.ts[sel]
        at = c.start_ms + round(k * 1000)
        out.append(float(usd[ts > at].sum() / usd.sum()) if usd.sum() > 0 else 0.0)
    return np.asarray(out)


def report_goals(rec: Recording, spans: list[tuple[str, str, int, int]], known: np.ndarray) -> None:
    g = goals(rec, spans, known)
    print(
        f"  goals: alert after earliest knowable median "
        f"{g['delay_after_knowable_median_s']:.2f} s (p90 "
        f"{g['delay_after_knowable_p90_s']:.2f} s; goal <= 2 s), notional still ahead "
        f"at the alert median {g['ahead_median']:.1%} (goal >= 50 %), false alarms in "
        f"calm time {g['false_calm']:.0f} over {g['calm_hours']:.1f} h x "
        f"{len(rec.names)} markets = {g['false_per_market_week']:.2f} per market-week "
        f"(goal <= 1), in the crash episode {g['false_crash']:.0f}",
        flush=True,
    )
    print(
        f"  outside the crash episode: precision {g['calm_precision']:.3f} recall "
        f"{g['calm_recall']:.3f} ({g['calm_true_cascades']:.0f} true cascades; "
        f"{g['crash_true_cascades']:.0f} start in the crash episode or its hour after)",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seed", type=int, default=3, help="default 3, a held-out seed")
    parser.add_argument("--hours", type=float, default=240.0)
    parser.add_argument("--grid", action="store_true", help="tune over GRID on this seed")
    parser.add_argument("--fuel", action="store_true", help="feed the heatmap's fuel too")
    parser.add_argument("--no-oi", action="store_true", help="do not feed open interest")
    parser.add_argument(
        "--fill-priced",
        action="store_true",
        help="build the engine as the server does (fill_priced=registry.fill_priced()): the "
        "simulator quotes every venue at fills, so this only hides the other venues' prices",
    )
    parser.add_argument("--set", type=_setting, action="append", default=[], help="FIELD=X")
    parser.add_argument("--record-only", action="store_true", help="only fill the cache")
    parser.add_argument("--curve", type=Path, help="run CURVE and plot precision/recall here")
    parser.add_argument(
        "--crash-at", type=float, help="schedule the crash episode this many hours in"
    )
    parser.add_argument(
        "--truth",
        choices=("wave", "positions", "impact", "all"),
        default="wave",
        help="what a true cascade is: a liquidation wave of the market's size in a minute over "
        "three seconds (default), the same over three positions, or the simulator's chain "
        "reactions alone (two impact-driven positions; the truth before issue 20); all: each",
    )
    parser.add_argument(
        "--oi-level-oracle",
        action="store_true",
        help="diagnosis, not live-observable: scale each market's open interest by "
        f"{OI_LEVEL_REF:g} x its size (the simulator's oi_usd, to which its depth is tied) over "
        "its first snapshot's, so the size term no longer follows the seed's open-interest level",
    )
    parser.add_argument(
        "--no-accounts",
        action="store_true",
        help="ablation: replay without the cross-margin accounts' closes (sim.accounts)",
    )
    args = parser.parse_args()
    t0 = time.perf_counter()
    rec = cached(args.seed, args.hours, fuel=args.fuel, crash_at_h=args.crash_at)
    if args.no_accounts:
        rec = without_accounts(rec)
    if args.oi_level_oracle:
        rec = without_oi_level(rec, args.seed)
    crash_note = "" if args.crash_at is None else f", crash episode at {args.crash_at:g} h"
    print(
        f"seed {args.seed} ({seed_kind(args.seed)}), {args.hours:g} h{crash_note}, "
        f"{rec.ts.size:,} events, {len(rec.truth):,} true cascades by the simulator's own "
        f"(impact-driven) truth (recorded in {time.perf_counter() - t0:.0f} s)"
    )
    if args.record_only:
        return
    # One replay per config, judged against each asked-for definition of a true cascade.
    truths: list[tuple[str, Recording, np.ndarray]] = []
    for name in ("wave", "positions", "impact") if args.truth == "all" else (args.truth,):
        judged, known = truth_of(rec, args.seed, name)
        truths.append((name, judged, known))
        if known.size:
            print(
                f"truth {name}: {len(judged.truth)} true cascades; the earliest each can be "
                f"known (its definition met from the stream): median {np.median(known):.1f} s, "
                f"under 10 s for {np.mean(known < 10):.0%}; notional still ahead at that moment "
                f"median {np.median(ahead_at_knowable(judged, known)):.0%} (the most an alert "
                "that waits for confirmation can leave ahead)"
            )
    base = replace(CascadeConfig(), **dict(args.set))
    configs = [base]
    if args.curve:
        configs = [replace(base, level_gain=g, oi_ref=r) for g, r in CURVE]
    if args.grid:
        keys = list(GRID)
        configs = [
            replace(base, **dict(zip(keys, values, strict=True)))
            for values in itertools.product(*(GRID[k] for k in keys))
        ]
    points: list[tuple[CascadeConfig, dict[str, float]]] = []
    for config in configs:
        t1 = time.perf_counter()
        fill = registry.fill_priced() if args.fill_priced else None
        scores, spans = replay(rec, config, use_oi=not args.no_oi, fill_priced=fill)
        took = time.perf_counter() - t1
        for name, judged, known in truths:
            r = evaluate(judged, scores, spans)
            if name == truths[0][0]:
                points.append((config, r))
            knobs = {k: getattr(config, k) for k in (*GRID, *dict(args.set))}
            print(
                f"[truth {name}] {knobs} alerts {r['alerts']:.0f} precision "
                f"{r['precision']:.3f} recall {r['recall']:.3f} lead median "
                f"{r['lead_median_s']:.2f} s (p90 {r['lead_p90_s']:.2f} s) AUC "
                f"{r['auc_5min']:.3f} [replay {rec.ts.size / took / 1e6:.2f} M ev/s]",
                flush=True,
            )
            if known.size == len(judged.truth):
                report_goals(judged, spans, known)
    if args.curve:
        plot(points, args.curve, f"seed {args.seed}, {args.hours:g} h, {len(rec.truth)} true")


def plot(points: list[tuple[CascadeConfig, dict[str, float]]], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.8))
    for gain, label in ((1.0, "alert at 3 price levels"), (1.5, "alert at 2 price levels")):
        mine = [(c, r) for c, r in points if c.level_gain == gain]
        ax.plot(
            [r["recall"] for _, r in mine], [r["precision"] for _, r in mine], "o-", label=label
        )
        for c, r in mine:
            ax.annotate(
                f"{c.oi_ref * 100:g}% OI, {r['lead_median_s']:.0f} s",
                (r["recall"], r["precision"]),
                fontsize=7,
                xytext=(4, 4),
                textcoords="offset points",
            )
    ax.axhline(0.8, color="grey", lw=0.8, ls="--")
    ax.axvline(0.8, color="grey", lw=0.8, ls="--")
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.set_xlim(0.2, 1.0)
    ax.set_ylim(0.2, 1.0)
    ax.set_title(f"Cascade alerts vs true cascades ({title}); label: oi_ref, median lead")
    ax.title.set_fontsize(9)
    ax.legend(loc="lower left")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
