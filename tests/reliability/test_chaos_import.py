"""`purpleflea import` killed mid-import (at a seeded moment, and right after a batch is
stored: the worst one), then run again to completion.

Afterwards the store holds every event of the file once, under strictly increasing seqs, and
`GET /v1/coverage`'s `imported` hours (the `coverage_imports` table) count exactly the events
the import stored: the second run skips the events the first one stored ("already stored"),
so whatever the first run stored must have been recorded with them.
"""

from __future__ import annotations

import asyncio
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from purpleflea.commands.export import write_csv
from tests.events import T0, stored_event
from tests.reliability.chaos import (
    SIGNALS,
    cli,
    describe_signal,
    stored,
    stored_if_made,
    wait_until,
)

SEED = 2026_12_07
EVENTS = 30_000  # six of the importer's batches of 5,000

#: Runs the command with the store's append wrapped: the process SIGKILLs itself right after
#: the ``argv[1]``-th batch is committed, before anything else the importer does for it.
_KILL_AFTER_BATCH = """
import os, signal, sys
from purpleflea.store.sqlite import SQLiteStore
from purpleflea.cli import main
append, after, batches = SQLiteStore.append_now, int(sys.argv[1]), []
def append_now(self, *args, **kwargs):
    stored = append(self, *args, **kwargs)
    batches.append(len(stored))
    if len(batches) == after:
        os.kill(os.getpid(), signal.SIGKILL)
    return stored
SQLiteStore.append_now = append_now
sys.exit(main(sys.argv[2:]))
"""


def _export(path: Path) -> list[str]:
    events = [
        stored_event(n + 1, prefix="imp", ts=T0 + n * 20_000, received_at=T0 + n * 20_000)
        for n in range(EVENTS)
    ]

    async def pages():  # type: ignore[no-untyped-def]
        yield events

    asyncio.run(write_csv(pages(), path))
    return [event.id for event in events]


def _imported_count(db: Path) -> int:
    connection = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        (total,) = connection.execute("SELECT COALESCE(SUM(events), 0) FROM coverage_imports")
    finally:
        connection.close()
    return int(total[0])


def _check(data: Path, ids: list[str], what: str) -> None:
    db = data / "purpleflea.sqlite"
    after = stored(db)
    seqs = [seq for seq, _ in after]
    assert len(set(seqs)) == len(seqs), what
    assert sorted(event_id for _, event_id in after) == sorted(ids), what
    assert _imported_count(db) == len(after), (what, _imported_count(db), len(after))


def _finish(data: Path, export: Path, what: str) -> None:
    again = subprocess.run(
        cli("import", str(export), "--data-dir", str(data), "--no-progress"),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert again.returncode == 0, (what, again.stdout, again.stderr)


def test_an_import_killed_right_after_a_batch_is_stored_is_completed_and_counted(
    tmp_path: Path,
) -> None:
    export = tmp_path / "export.csv"
    ids = _export(export)
    after = random.Random(SEED).randint(1, 5)
    data = tmp_path / "data"
    command = ["import", str(export), "--data-dir", str(data), "--no-progress"]
    first = subprocess.run(
        [sys.executable, "-c", _KILL_AFTER_BATCH, str(after), *command],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert first.returncode == -signal.SIGKILL, (first.stdout, first.stderr)
    what = f"SIGKILL right after batch {after} was stored"
    assert len(stored(data / "purpleflea.sqlite")) == after * 5_000, what
    _finish(data, export, what)
    _check(data, ids, what)


def _kill_once(export: Path, data: Path, rng: random.Random, sig: int) -> str:
    db = data / "purpleflea.sqlite"
    process = subprocess.Popen(
        cli("import", str(export), "--data-dir", str(data), "--no-progress"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    # From the first batch stored on, at a seeded delay (the import may finish first).
    wait_until(
        lambda: process.poll() is not None or bool(stored_if_made(db)), 60, "the first batch stored"
    )
    time.sleep(rng.uniform(0.0, 0.5))  # the kill's moment, not a wait for a condition
    if process.poll() is None:
        process.send_signal(sig)
    code = process.wait(60)
    return f"{describe_signal(sig)} (exit {code}, {len(stored_if_made(db))} stored)"


def test_an_import_killed_at_random_moments_is_completed_by_running_it_again(
    tmp_path: Path,
) -> None:
    export = tmp_path / "export.csv"
    ids = _export(export)
    rng = random.Random(SEED)
    for trial, sig in enumerate(SIGNALS):
        data = tmp_path / f"data{trial}"
        what = f"trial {trial}: " + _kill_once(export, data, rng, sig)
        _finish(data, export, what)
        _check(data, ids, what)
