"""Memory of the sequencer's dedupe window at its 500,000-id cap, per id shape.

Run (from the repository root)::

    .venv/bin/python bench/dedupe_memory.py            # 500,000 ids of each shape
    .venv/bin/python bench/dedupe_memory.py --ids 100000

Each id is made, passed to ``seen`` and dropped by its maker, so what tracemalloc still counts
afterwards is what the window keeps alive: its keys, their order, their expiries (the string
itself when the window keys by it). Ids come in batches of 2,000 sharing one ``now`` (1 ms
apart), as the sequencer's batches do (``--per-now 1``: every id its own time, as a
connection's frames).
Compared: :class:`purpleflea.ingest.dedupe.Deduper` (keys: 60-bit hashes of the ids, expiries
as runs) and :class:`ByString`, the window as it was until 2026-12-07 (a dict of id strings to
expiries and a deque of (expiry, id) tuples). Also the time per ``seen`` call (ids made
beforehand, with their hash cached as in the server, where the dict lookups upstream did so).
"""

from __future__ import annotations

import argparse
import gc
import math
import sys
import time
import tracemalloc
from collections import deque
from collections.abc import Callable

from purpleflea.ingest.dedupe import Deduper

#: Id shapes: the simulator's counter, a content id (OKX), a Hyperliquid fill's hash+address.
SHAPES: dict[str, Callable[[int], str]] = {
    "simulator": lambda i: f"sim-0-1796000000000-{i}",
    "okx": lambda i: f"okx:BTC-USDT-SWAP:{1796000000000 + i}:long:sell:12.5:43210.1",
    "hyperliquid": lambda i: f"hyperliquid:0x{i:064x}:0x{i * 7:040x}:BTC:{10**14 + i}",
}


class ByString:
    """The window keyed by the id string (the reference): dict id -> expiry, deque of
    (expiry, id) in arrival order."""

    def __init__(self, ttl: float, max_size: int) -> None:
        self.ttl, self.max_size = ttl, max_size
        self._expiry: dict[str, float] = {}
        self._order: deque[tuple[float, str]] = deque()
        self._first_expiry = math.inf

    def seen(self, event_id: str, now: float) -> bool:
        expiry = self._expiry
        if now >= self._first_expiry or len(expiry) >= self.max_size:
            self._forget(now)
        if event_id in expiry:
            return True
        at = now + self.ttl
        expiry[event_id] = at
        self._order.append((at, event_id))
        if len(expiry) == 1:
            self._first_expiry = at
        return False

    def _forget(self, now: float) -> None:
        expiry, order = self._expiry, self._order
        while order:
            at, oldest = order[0]
            if at > now and len(expiry) < self.max_size:
                self._first_expiry = at
                return
            order.popleft()
            del expiry[oldest]
        self._first_expiry = math.inf


Window = Deduper | ByString
KINDS: dict[str, Callable[[int], Window]] = {
    "by string (before)": lambda cap: ByString(3_600.0, cap),
    "60-bit key (Deduper)": lambda cap: Deduper(3_600.0, cap),
}


def held_bytes(
    kind: Callable[[int], Window], make: Callable[[int], str], ids: int, per_now: int
) -> int:
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        window = kind(ids)
        for i in range(ids):
            window.seen(make(i), (i // per_now) * 0.001)  # 1 ms a batch: none expires
        return tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()


def ns_per_call(kind: Callable[[int], Window], ids: list[str], cap: int) -> float:
    best = math.inf
    for _ in range(3):
        window = kind(cap)
        seen = window.seen
        started = time.perf_counter()
        for i, event_id in enumerate(ids):
            seen(event_id, (i // 2_000) * 0.001)
        best = min(best, time.perf_counter() - started)
    return best / len(ids) * 1e9


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ids", type=int, default=500_000)
    parser.add_argument("--per-now", type=int, default=2_000)
    args = parser.parse_args(argv)
    print(f"{args.ids:,} ids held, {args.per_now:,} ids per now\n")
    print("| id shape | id chars | window | bytes an id | MB held |")
    print("|---|---:|---|---:|---:|")
    for shape, make in SHAPES.items():
        for name, kind in KINDS.items():
            held = held_bytes(kind, make, args.ids, args.per_now)
            print(
                f"| {shape} | {len(make(args.ids))} | {name} | {held / args.ids:.0f} "
                f"| {held / 1e6:.1f} |",
                flush=True,
            )
    ids = [SHAPES["simulator"](i) for i in range(2 * args.ids)]
    for event_id in ids:
        hash(event_id)  # cached in the string, as upstream lookups leave it in the server
    print(f"\ntime per seen(), {len(ids):,} simulator ids through a {args.ids:,} cap:")
    for name, kind in KINDS.items():
        print(f"  {name}: {ns_per_call(kind, ids, args.ids):.0f} ns", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
