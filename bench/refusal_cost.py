"""CPU the refusal reader costs on a venue's ordinary frames: the connection runner asks
``Connection.refusal`` of every frame that carries no event (ingest/received_frames.py), so
a reader that parses frames pays on the whole trade feed, not only on error replies.

Run (from the repository root; old code: ``PYTHONPATH`` at a ``git archive`` copy of the
base's ``src``, run alternately)::

    nice -n 10 .venv/bin/python bench/refusal_cost.py [connection ...]

Frames are each connection's recorded frames (tests/fakes/harness.recorded_frames). Prints,
per connection, the median of 7 runs of the CPU microseconds (``time.process_time``) a frame.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # the tests' recorded frames, not a copy

from tests.fakes.harness import catalogs_for_tests, recorded_frames  # noqa: E402

from purpleflea.ingest import feeds  # noqa: E402

CALLS = 100_000


def per_frame_us(connection: str) -> float:
    specs = {s.name: s for s in feeds.build_feeds(catalogs_for_tests())}
    refusal = specs[connection].refusal
    assert refusal is not None
    frames = recorded_frames()[connection.split("#", maxsplit=1)[0]]
    rounds = CALLS // len(frames) + 1
    runs = []
    for _ in range(7):
        started = time.process_time()
        for _ in range(rounds):
            for frame in frames:
                refusal(frame)
        runs.append((time.process_time() - started) / (rounds * len(frames)) * 1e6)
    return statistics.median(runs)


def main() -> None:
    names = sys.argv[1:] or ["deribit", "bitmex", "gate_usdt"]
    print(f"{'connection':<14} {'us/frame':>9}")
    for name in names:
        print(f"{name:<14} {per_frame_us(name):>9.3f}")


if __name__ == "__main__":
    main()
