"""A digest of everything the simulator computes, so a change meant to make it faster can show
that it computes the same bits.

    .venv/bin/python bench/sim_digest.py                 # 2 days of history, 30 min served
    .venv/bin/python bench/sim_digest.py --days 1 --minutes 0

Two runs, seed 0, each digested separately (sha256, 12 hex digits):

- ``history``: the history configuration (1 s steps, 5-minute blocks) for ``--days``: every raw
  block's arrays as computed (before the snapshot venues' thinning: every event, its fill,
  run and cohort), every market's open interest total and mark at each block's end, then the
  true cascades and the whole state that carries the market forward
  (:meth:`~purpleflea.sim.Simulator.capture_state`: marks, per-market state, the book, the
  random generator).
- ``served``: the configuration ``purpleflea serve`` runs (2.5 s blocks, 250 ms steps, its
  crash episode from the start) for ``--minutes``: every step's published
  :class:`~purpleflea.model.VenueLiquidation` and snapshot (their reprs: floats to the last
  bit), then the cascades and the state as above.

``bench/sim_speed.py --hash`` digests what a SQLite history stores; this digests what the
simulation itself computes, including what no store keeps (the truth, the book, the random
state), in both the history's and the live feed's configuration.
"""

from __future__ import annotations

import argparse
import hashlib
import resource

import numpy as np

from purpleflea.sim import SimConfig, Simulator
from purpleflea.sim.history import blocks, history_config
from purpleflea.sim.resume import BOOK_TIMES, BOOK_VALUES, MARKET_ARRAYS


def _array(digest: hashlib._Hash, array: np.ndarray) -> None:  # type: ignore[type-arg]
    """Its dtype, shape and bytes: the same values in another type digest differently."""
    digest.update(f"{array.dtype.str}{array.shape}".encode())
    digest.update(np.ascontiguousarray(array).tobytes())


def _state(digest: hashlib._Hash, sim: Simulator) -> None:
    """The true cascades so far and the state that carries the market forward."""
    for cascade in sim.runs.cascades:
        digest.update(repr(cascade).encode())
    state = sim.capture_state()
    digest.update(f"{state.now_ms} {state.h_common!r} {state.next_cohort} {state.rng}".encode())
    _array(digest, state.marks)
    for key in MARKET_ARRAYS:
        _array(digest, state.markets[key])
    for key in BOOK_TIMES + BOOK_VALUES:
        _array(digest, state.book[key])


def history_digest(days: float) -> tuple[str, int, int]:
    """Digest, events and cascades of ``days`` of seed 0's history configuration."""
    sim = Simulator(history_config(seed=0))
    digest = hashlib.sha256()
    events = 0
    for raw in blocks(sim, days):
        digest.update(f"{raw.start_ms} {raw.end_ms} {raw.first_n}".encode())
        for column in (
            raw.ts,
            raw.market,
            raw.listing,
            raw.side,
            raw.price,
            raw.quantity,
            raw.run,
            raw.cohort,
            raw.fill,
        ):
            _array(digest, column)
        totals = sim.market_open_interest(raw.end_ms)
        if totals is not None:
            for column in totals:
                _array(digest, column)
        events += raw.ts.size
    _state(digest, sim)
    return digest.hexdigest()[:12], events, len(sim.runs.cascades)


def served_digest(minutes: float) -> tuple[str, int, int]:
    """Digest, events and cascades of ``minutes`` of the served configuration (its crash)."""
    sim = Simulator(SimConfig.served())
    digest = hashlib.sha256()
    events = 0
    for step in sim.run(round(minutes * 60_000)):
        digest.update(f"{step.ts}".encode())
        for event in step.liquidations:
            digest.update(repr(event).encode())
        for snapshot in step.snapshots:
            digest.update(repr(snapshot).encode())
        events += len(step.liquidations)
    _state(digest, sim)
    return digest.hexdigest()[:12], events, len(sim.runs.cascades)


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=float, default=2.0, help="history days (0: none)")
    parser.add_argument("--minutes", type=float, default=30.0, help="served minutes (0: none)")
    args = parser.parse_args()
    runs = (("history", history_digest, args.days), ("served", served_digest, args.minutes))
    for name, run, amount in runs:
        if amount <= 0:
            continue
        cpu = _cpu_s()
        digest, events, cascades = run(amount)
        print(
            f"{name}={digest} ({amount:g} {'days' if name == 'history' else 'min'}, "
            f"{events:,} events, {cascades:,} cascades, CPU {_cpu_s() - cpu:.1f} s)",
            flush=True,
        )


if __name__ == "__main__":
    main()
