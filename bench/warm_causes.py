"""How far a restart's warmed cascade engine is from the live one, and what each cause explains.

    PYTHONPATH=. .venv/bin/python bench/warm_causes.py [--seconds 20] [--speed 30]
    PYTHONPATH=. .venv/bin/python bench/warm_causes.py --crash [--runs 3] [--seconds 20]

``--crash``: the served tracker is killed with SIGKILL (``tests/server/crash_child.py``, which
writes down the engine it ran first) and started again on its folder as ``purpleflea serve``
starts, once with checkpoints off (``checkpoint_s`` 0: the restart warms the engine, as before
checkpoints) and once with the default checkpoints (the restart continues the newest one and
replays what was stored after it, and what the engine was told since from the journal); each
pair's counts are of the restarted engine against the one that ran, and the checkpoints' count
and CPU (exported on the loop, written in a thread), and the journal's records and bytes.

Runs the served tracker on the simulator (``--markets`` markets at ``--speed``x) for
``--seconds``, stops it cleanly, then warms a fresh engine from the store exactly as a start
without a saved engine state does (:meth:`Pipeline._warm`) and counts how the two differ:
active cascades in one and not the other, and market sides whose score differs. Each variant
takes one suspected cause away from the live side (the fuel the heatmap tells the engine, the
wall-clock ticks, open interest altogether), so the drop in differences is what that cause
explains; ``oi1m`` has the open interest recorder flush once a simulated minute instead of
once a wall-clock minute (at 30x the store otherwise keeps about one row per market). Each
variant is its own run of the simulator (paced by the wall clock), so compare
the counts in proportion. The pure engine is used so the variants can patch it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import msgspec

os.environ.setdefault("PURPLEFLEA_PURE_ENGINE", "1")

from tests.server.conftest import QUICK_WARMUP_MS, make_config, running_server
from tests.server.crash_child import LIVE

from purpleflea.engine import CascadeEngine
from purpleflea.engine.heatmap_feed import HeatmapFeed
from purpleflea.server.engine_state import EngineState
from purpleflea.server.oi_recorder import OpenInterestRecorder
from purpleflea.server.pipeline import Pipeline
from purpleflea.sim import SimConfig
from purpleflea.venues import registry

SIDES = ("long", "short")


def _differences(live: CascadeEngine, warmed: CascadeEngine, markets: list[str]) -> str:
    ours = {a.id for a in live.active()}
    theirs = {a.id for a in warmed.active()}
    scores = sum(
        live.score(m, s) != warmed.score(m, s)  # type: ignore[arg-type]
        for m in markets
        for s in SIDES
    )
    return (
        f"live active {len(ours)}, warmed active {len(theirs)}, only warmed "
        f"{len(theirs - ours)}, only live {len(ours - theirs)}, market sides scored "
        f"differently {scores} of {2 * len(markets)}"
    )


async def _run(folder: Path, args: argparse.Namespace) -> tuple[str, int]:
    config = make_config(folder, source="sim", speed=args.speed, sim_markets=args.markets)
    async with running_server(config) as running:
        await asyncio.sleep(args.seconds)
        tracker = running.server.tracker
    live = tracker.scorer
    assert isinstance(live, CascadeEngine)
    stored = tracker.last_seq
    rows = len(
        await tracker.store.__class__(folder / "purpleflea.sqlite").open_interest(
            0, 2**62, limit=10**7
        )
    )
    again = Pipeline(tracker.store.__class__(folder / "purpleflea.sqlite"), tracker.bus)
    warmed = CascadeEngine(fill_priced=live._fill)
    again.scorer = again.core.scorer = warmed
    await again._warm(200_000, await again.store.last_seq())
    await again.store.close()
    return f"{rows:,} open interest rows; " + _differences(
        live, warmed, sorted(tracker.markets)
    ), stored


async def _crash(folder: Path, args: argparse.Namespace, checkpoint_s: float) -> str:
    """One served run killed with SIGKILL, and its restart's engine against the one that ran."""
    child = [sys.executable, "-m", "tests.server.crash_child", str(folder), "1000"]
    child += [str(args.markets), str(args.speed), str(args.seconds), str(checkpoint_s)]
    died = await asyncio.to_thread(subprocess.run, child, capture_output=True, text=True)
    if died.returncode != -9:
        raise SystemExit(f"the served tracker ended with {died.returncode}: {died.stderr[-2000:]}")
    live = CascadeEngine(fill_priced=registry.fill_priced())
    live.restore_state(msgspec.msgpack.decode((folder / LIVE).read_bytes()))
    told = json.loads((folder / "live.json").read_text())
    began = time.process_time()
    async with running_server(make_config(folder)) as again:
        started_cpu = time.process_time() - began  # the server built and started (whole)
        tracker = again.server.tracker
        restarted = tracker.scorer
        assert isinstance(restarted, CascadeEngine)
        found = _differences(live, restarted, sorted(tracker.markets))
        start = tracker.engine_start
    worst = max(
        abs(live.score(m, s) - restarted.score(m, s))  # type: ignore[arg-type]
        for m in tracker.markets
        for s in SIDES
    )
    cpu = told["checkpoint_cpu_s"] / told["checkpoints"] * 1000 if told["checkpoints"] else 0.0
    span = told["clock_span_s"]
    day = told["journal_bytes"] / span * 86_400 / 1e6 if span > 0 else 0.0
    return (
        f"{told['last_seq']:,} seqs stored, {told['checkpoints']} checkpoints "
        f"({cpu:.1f} ms CPU each, {told['state_bytes']:,} bytes); journal "
        f"{told['journal_records']:,} records, {told['journal_bytes']:,} bytes over "
        f"{span / 60:.0f} simulated minutes ({day:.1f} MB a simulated day); restart {start} "
        f"({started_cpu:.2f} s CPU to serving): {found}, largest score difference {worst}"
    )


def _crashes(args: argparse.Namespace) -> None:
    for run in range(args.runs):
        for checkpoint_s in [0.0] + [float(x) for x in args.checkpoint_s.split(",")]:
            name = f"checkpoint every {checkpoint_s:g} s" if checkpoint_s else "warm"
            with tempfile.TemporaryDirectory() as folder:
                found = asyncio.run(_crash(Path(folder), args, checkpoint_s))
            print(
                f"run {run + 1} {name}: {found} (load {os.getloadavg()[0]:.1f}, "
                f"{time.strftime('%H:%M')} UTC)",
                flush=True,
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--speed", type=float, default=30.0)
    parser.add_argument("--markets", type=int, default=50)
    parser.add_argument("--variants", default="all,nofuel,nofuel+noticks,nofuel+noticks+nooi")
    parser.add_argument("--crash", action="store_true", help="SIGKILL restarts, before/after")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--checkpoint-s", default="60", help="with --crash: checkpoint intervals compared"
    )
    args = parser.parse_args()
    if args.crash:
        _crashes(args)
        return
    served = SimConfig.served
    SimConfig.served = staticmethod(  # type: ignore[method-assign]
        lambda **o: served(**{"warmup_ms": QUICK_WARMUP_MS, **o})
    )
    EngineState.load = lambda self, engine, last_seq, within: None  # type: ignore[method-assign]
    for variant in args.variants.split(","):
        if "nofuel" in variant:
            HeatmapFeed._update_fuel = lambda self, market, mark: None  # type: ignore[method-assign]
        if "noticks" in variant:

            async def never(self: Pipeline, interval: float) -> None:
                await asyncio.Event().wait()

            Pipeline._tick_loop = never  # type: ignore[method-assign]
        if "oi1m" in variant:  # the recorder flushes once a simulated minute, not a wall one
            OpenInterestRecorder.run.__defaults__ = (60.0 / args.speed, 5.0)
        if "nooi" in variant:
            CascadeEngine.set_open_interest = lambda self, *a, **k: None  # type: ignore[method-assign]
        with tempfile.TemporaryDirectory() as folder:
            before = resource.getrusage(resource.RUSAGE_SELF)
            found, stored = asyncio.run(_run(Path(folder), args))
            after = resource.getrusage(resource.RUSAGE_SELF)
        cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
        print(
            f"{variant}: {stored:,} seqs stored; {found} "
            f"(cpu {cpu:.1f} s, load {os.getloadavg()[0]:.1f}, {time.strftime('%H:%M')} UTC)",
            flush=True,
        )


if __name__ == "__main__":
    main()
