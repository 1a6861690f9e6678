"""How often the served simulator writes its state, what a write costs, and how far a price
can be from the last state written (server/sources.py: SIM_SAVE_MOVE, SIM_SAVE_MIN_S).

Run (from the repository root)::

    .venv/bin/python bench/sim_state_saves.py              # 30 simulated minutes, 275 markets
    .venv/bin/python bench/sim_state_saves.py --minutes 5  # a quick look

The served simulator (``live_simulator``: the crash episode from the start) runs ``--minutes``
of 2.5 s blocks without pacing; after each block the write rule is applied to every market's
mark, at speed 1 (wall seconds = simulated seconds), for a few thresholds: the writes it
makes, and the largest distance of any mark from the marks last written (what a SIGKILL just
before the next write would lose: the restart resumes the written state). Then one state is
written ``--writes`` times to a temporary folder: CPU (``time.process_time``) and wall per
write, and the file's size.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from purpleflea.server.sources import SIM_SAVE_EVERY_S, live_simulator
from purpleflea.sim import resume

BLOCK_S = 2.5


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--markets", type=int, default=275)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--writes", type=int, default=20)
    args = parser.parse_args()
    sim = live_simulator(args.seed, args.markets, None, 0)
    blocks = int(args.minutes * 60 / BLOCK_S)
    marks = []
    started = time.process_time()
    for _ in range(blocks):
        sim.next_block()
        marks.append(resume.capture(sim).marks.copy())
    print(f"{blocks} blocks simulated in {time.process_time() - started:.1f} s of CPU")
    for move in (0.005, 0.0025):
        for min_s in (1.0, 5.0, 10.0):
            saved: np.ndarray | None = None
            last_t, writes, worst = 0.0, 0, 0.0
            for n, now in enumerate(marks):
                t = n * BLOCK_S
                drift = 0.0 if saved is None else float(np.max(np.abs(now / saved - 1)))
                worst = max(worst, drift)
                waited = t - last_t
                moved = waited >= min_s and drift >= move
                if saved is None or waited >= SIM_SAVE_EVERY_S or moved:
                    saved, last_t, writes = now, t, writes + 1
            print(
                f"move {move * 100:.2f} %, at most every {min_s:g} s: {writes} writes, "
                f"every mark at most {worst * 100:.2f} % from the last written"
            )
    state = resume.capture(sim)
    folder = Path(tempfile.mkdtemp())
    cpu, wall = time.process_time(), time.perf_counter()
    for _ in range(args.writes):
        resume.save(folder / "state.npz", state)
    cpu = (time.process_time() - cpu) / args.writes
    wall = (time.perf_counter() - wall) / args.writes
    size = (folder / "state.npz").stat().st_size
    print(f"one write: {cpu * 1000:.1f} ms CPU, {wall * 1000:.1f} ms wall, {size / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
