"""A served tracker on the simulator that kills itself with SIGKILL, leaving the engine it ran.

    python -m tests.server.crash_child FOLDER SEQS MARKETS SPEED [SECONDS [CHECKPOINT_S]]

Serves ``--source sim`` as the tests serve it (:func:`running_server`, the quick warm-up) on
``FOLDER`` until ``SEQS`` are published and ``SECONDS`` (8) have passed, then, holding the
tracker's plan lock (no plan is open: every event the engine scored is stored, none is being
scored), writes the engine's exported state to ``FOLDER/live.engine`` (msgpack) and its
checkpoints' count and CPU and the journal's records and bytes to ``FOLDER/live.json``, and
sends itself SIGKILL: nothing of a clean stop runs, as after ``kill -9``. With
``PURPLEFLEA_CRASH_STORE_URL`` set, it serves on that PostgreSQL store; with
``PURPLEFLEA_CRASH_AFTER_JOURNAL_WRITTEN`` set, the kill comes right after the engine
journal's writer wrote all it was told up to the export (PostgreSQL: it writes once a
second). The engine is exported with no await after it but that write: snapshots are told
outside the plan lock, and one told after the export must not be in the journal. ``CHECKPOINT_S``:
the tracker's ``checkpoint_s`` (0: none, and the start's checkpoint and the journal removed
before the kill: the restart warms the engine as before checkpoints).
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import signal
import sys
import time
from pathlib import Path

import msgspec

from purpleflea.server.engine_state import KeepsState
from purpleflea.sim import SimConfig
from tests.server.conftest import QUICK_WARMUP_MS, make_config, running_server, until

#: The file the engine's state at the kill is written to, in the data folder.
LIVE = "live.engine"
#: The environment variable naming a PostgreSQL store to serve on instead of the folder's.
STORE_URL = "PURPLEFLEA_CRASH_STORE_URL"
#: Set: the kill comes right after the engine journal's last write (see the kill).
AFTER_JOURNAL_WRITTEN = "PURPLEFLEA_CRASH_AFTER_JOURNAL_WRITTEN"


async def _serve_then_die(
    folder: Path, seqs: int, markets: int, speed: float, seconds: float, checkpoint_s: float | None
) -> None:
    config = make_config(folder, source="sim", speed=speed, sim_markets=markets)
    store_url = os.environ.get(STORE_URL)
    if store_url:  # a PostgreSQL store: the engine's state and journal in its database
        config = make_config(
            folder, source="sim", speed=speed, sim_markets=markets, store_url=store_url
        )
    async with running_server(config) as running:
        tracker = running.server.tracker
        # The checkpoints as the tracker's clock calls for them (at 30x, a 60 s checkpoint is
        # due every 2 s of wall time): what the restart continues is at most a minute old.
        tracker.checkpoint_wall_s = 0.0
        if checkpoint_s is not None:
            tracker.checkpoint_s = checkpoint_s
        begun = time.monotonic()
        await until(
            lambda: tracker.last_seq > seqs and time.monotonic() - begun > seconds,
            seconds + 180,
            f"{seqs} simulated liquidations",
        )
        engine = tracker.scorer
        assert isinstance(engine, KeepsState)
        async with tracker._serial:
            first = await tracker.store.since(0, limit=1)
            last_seq = await tracker.store.last_seq()
            saved = tracker.engine_state
            journal = None if saved is None else saved.journal
            written = os.environ.get(AFTER_JOURNAL_WRITTEN) and journal is not None
            if written:
                assert journal is not None
                # Killed right after the journal's writer wrote everything told up to the
                # export (a PostgreSQL store's journal is written once a second: what it had
                # not written yet is lost with the process, the one loss it has by design).
                # What a snapshot tells the engine from here on waits in memory, lost with
                # the kill, as it is not in the state exported below.
                journal.interval_s = math.inf
                journal.flush(tick=True)
            # Exported after the store's reads and right after the hand-over, with no await
            # between: a snapshot's fuel and open interest are told outside the plan lock,
            # and one told during an await after the export was journaled, so replayed by
            # the restart, and was not in this state (the PostgreSQL test failed so, now and
            # then at load 6-11: `markets` and `oi` apart).
            exported = msgspec.msgpack.encode(engine.export_state())
            records = 0 if journal is None else journal.records
            if written:
                assert journal is not None
                await journal.written()
            (folder / LIVE).write_bytes(exported)
            stats = {
                "state_bytes": len(exported),
                "last_seq": last_seq,
                "checkpoints": tracker.checkpoints,
                "checkpoint_cpu_s": tracker.checkpoint_cpu_s,
                # The journal over the run, and the tracker's clock it spans.
                "journal_records": records,
                "journal_bytes": 0 if journal is None else journal.bytes,
                "clock_span_s": (tracker.clock_ms - first[0].ts) / 1000 if first else 0.0,
            }
            (folder / "live.json").write_text(json.dumps(stats))
            if checkpoint_s == 0 and saved is not None:  # not even the start's: it warms
                for state in saved.path.parent.glob(saved.path.name + "*"):
                    state.unlink()
            os.kill(os.getpid(), signal.SIGKILL)


def main() -> None:
    folder, seqs, markets, speed, *rest = sys.argv[1:]
    seconds = float(rest[0]) if rest else 8.0
    checkpoint_s = float(rest[1]) if len(rest) > 1 else None
    served = SimConfig.served
    SimConfig.served = staticmethod(  # type: ignore[method-assign]
        lambda **o: served(**{"warmup_ms": QUICK_WARMUP_MS, **o})
    )
    asyncio.run(
        _serve_then_die(Path(folder), int(seqs), int(markets), float(speed), seconds, checkpoint_s)
    )


if __name__ == "__main__":
    main()
