"""How often the served simulator writes its state, what a write costs, and how far a price
can be from the last state written (server/sources.py: SIM_SAVE_MOVE, SIM_SAVE_MIN_S).

Run (from the repository root)::

    .venv/bin/python bench/sim_state_saves.py              # 30 simulated minutes, 275 markets
    .venv/bin/python bench/sim_state_saves.py --minutes 120  # the crash episode and after
    .venv/bin/python bench/sim_state_saves.py --minutes 5  # a quick look

The served simulator (``live_simulator``: the crash episode from the start) runs ``--minutes``
of 2.5 s blocks without pacing; after each block the write rule is applied to every market's
mark, at speed 1 (wall seconds = simulated seconds), for a few thresholds: the writes it
makes, and the largest distance of any mark from the marks last written (what a SIGKILL just
before the next write would lose: the restart resumes the written state).

The chosen rule's writes are made as the server makes them (``resume.StateSaver`` into a
temporary folder: the full state first, then what changed, the full state again when the log
would outgrow it): bytes written per simulated hour and CPU (``time.process_time``) per write.
Beside them, what writing the whole state each time (``resume.save``, before the log) costs:
the same writes times the full state's size, and the CPU and wall of ``--writes`` such writes.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from purpleflea.server.sources import (
    SIM_SAVE_EVERY_S,
    SIM_SAVE_MIN_S,
    SIM_SAVE_MOVE,
    live_simulator,
)
from purpleflea.sim import resume

BLOCK_S = 2.5
HOUR_S = 3600.0


def due(t: float, last_t: float, drift: float | None, move: float, min_s: float) -> bool:
    """The write rule of ``run_sim`` at speed 1 (``drift`` None: nothing written yet)."""
    if drift is None:
        return True
    waited = t - last_t
    return waited >= SIM_SAVE_EVERY_S or (waited >= min_s and drift >= move)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--markets", type=int, default=275)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--writes", type=int, default=20)
    args = parser.parse_args()
    sim = live_simulator(args.seed, args.markets, None, 0)
    blocks = int(args.minutes * 60 / BLOCK_S)
    folder = Path(tempfile.mkdtemp())
    saver = resume.StateSaver(folder / "state.npz")
    state: resume.SimState | None = None
    marks = []
    saved_marks: np.ndarray | None = None
    last_t = 0.0
    saves: list[tuple[float, int, float]] = []  # (simulated s, bytes, CPU s) of each write
    simulated = 0.0
    for n in range(blocks):
        started = time.process_time()
        sim.next_block()
        state = resume.capture(sim, into=state)
        simulated += time.process_time() - started
        marks.append(state.marks.copy())
        t = n * BLOCK_S
        drift = (
            None if saved_marks is None else float(np.max(np.abs(state.marks / saved_marks - 1)))
        )
        if due(t, last_t, drift, SIM_SAVE_MOVE, SIM_SAVE_MIN_S):
            started = time.process_time()
            written = saver.save(state)
            saves.append((t, written, time.process_time() - started))
            saved_marks, last_t = state.marks.copy(), t
    print(f"{blocks} blocks simulated in {simulated:.1f} s of CPU")
    for move in (0.005, 0.0025):
        for min_s in (1.0, 5.0, 10.0):
            at: np.ndarray | None = None
            last, writes, worst = 0.0, 0, 0.0
            for n, now in enumerate(marks):
                t = n * BLOCK_S
                drift = None if at is None else float(np.max(np.abs(now / at - 1)))
                worst = max(worst, drift or 0.0)
                if due(t, last, drift, move, min_s):
                    at, last, writes = now, t, writes + 1
            print(
                f"move {move * 100:.2f} %, at most every {min_s:g} s: {writes} writes, "
                f"every mark at most {worst * 100:.2f} % from the last written"
            )
    assert state is not None
    cpu, wall = time.process_time(), time.perf_counter()
    for _ in range(args.writes):
        full = resume.save(folder / "whole.npz", state)
    cpu = (time.process_time() - cpu) / args.writes
    wall = (time.perf_counter() - wall) / args.writes
    print(f"whole state: {cpu * 1000:.1f} ms CPU, {wall * 1000:.1f} ms wall, {full / 1e6:.1f} MB")
    _report(saves, full, cpu, args.minutes * 60)


def _report(saves: list[tuple[float, int, float]], full: int, full_cpu: float, span: float) -> None:
    """Per simulated hour (the last one maybe partial): writes, bytes and CPU of the chosen
    rule as the saver writes it, against the whole state each time."""
    print(f"chosen rule ({SIM_SAVE_MOVE * 100:.2f} %, at most every {SIM_SAVE_MIN_S:g} s):")
    hour = 0.0
    while hour < span:
        inside = [s for s in saves if hour <= s[0] < hour + HOUR_S]
        length = min(HOUR_S, span - hour) / 60
        if inside:
            fulls = sum(1 for _, size, _ in inside if size >= full * 0.9)
            written = sum(size for _, size, _ in inside)
            changes = [cpu for _, size, cpu in inside if size < full * 0.9]
            per_change = statistics.median(changes) * 1000 if changes else float("nan")
            print(
                f"  minutes {hour / 60:.0f}-{hour / 60 + length:.0f}: {len(inside)} writes "
                f"({fulls} whole), {written / 1e6:.1f} MB written, whole each time "
                f"{len(inside) * full / 1e9:.2f} GB; CPU per write of changes median "
                f"{per_change:.1f} ms (max {max(changes, default=0) * 1000:.1f}), "
                f"whole {full_cpu * 1000:.1f} ms"
            )
        hour += HOUR_S


if __name__ == "__main__":
    main()
