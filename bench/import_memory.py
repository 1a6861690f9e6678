"""Peak memory of one ``purpleflea import`` command over many files, held vs read again.

    .venv/bin/python bench/import_memory.py --files 6 --events 150000 --held 100000

Writes ``--files`` tardis CSV files of ``--events`` liquidations each, one simulated day
apart (disjoint in time), then imports them, newest first, in one command twice, each in a
child process into a fresh folder: once with ``importer.HELD_EVENTS`` at its default (the
command holds every file's new events for its merged append) and once at ``--held`` (past
it, the files are read again a group of time-overlapping files at once). Printed per run:
the child's peak RSS, its wall time, and a digest of the stored (seq, id, ts) rows, which
must be equal.

Results: docs/agents.md ("Memory").
"""

from __future__ import annotations

import argparse
import hashlib
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

T0_US = 1_760_000_000_000_000
DAY_US = 86_400_000_000

CHILD = """
import asyncio, sys
from pathlib import Path
from purpleflea.commands import importer
if sys.argv[1] != "default":
    importer.HELD_EVENTS = int(sys.argv[1])
paths = sorted(Path(sys.argv[2]).glob("day*.csv"), reverse=True)
reports = asyncio.run(importer.import_files(paths, Path(sys.argv[3])))
print(sum(r.new for r in reports))
"""


def write_files(folder: Path, files: int, events: int) -> None:
    for day in range(files):
        base = T0_US + day * DAY_US
        with (folder / f"day{day:03d}.csv").open("w") as out:
            out.write("exchange,symbol,timestamp,local_timestamp,id,side,price,amount\n")
            for n in range(events):
                ts = base + n * 500_000
                side = "sell" if n % 2 else "buy"
                price, amount = f"60000.{n % 10}", f"0.{n % 997 + 1}"
                out.write(f"binance-futures,BTCUSDT,{ts},{ts + 5},,{side},{price},{amount}\n")


def digest(db: Path) -> str:
    rows = sqlite3.connect(db).execute("SELECT seq, id, ts FROM liquidations ORDER BY seq")
    hashed = hashlib.sha256()
    for seq, event_id, ts in rows:
        hashed.update(f"{seq},{event_id},{ts}\n".encode())
    return hashed.hexdigest()[:12]


def run(held: str, files: Path, data: Path) -> None:
    data.mkdir()
    started = time.monotonic()
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    done = subprocess.run(
        [sys.executable, "-c", CHILD, held, str(files), str(data)],
        check=True,
        capture_output=True,
        text=True,
    )
    wall = time.monotonic() - started
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    # ru_maxrss of the children is the largest child's so far: the first run is printed as
    # measured; a later one only if it went higher (run the smaller first).
    shown = (
        f"{peak / 1024:.0f} MB" if peak > before or before == 0 else f"<= {before / 1024:.0f} MB"
    )
    print(
        f"HELD_EVENTS {held}: {int(done.stdout)} new events, peak RSS {shown}, {wall:.1f} s, "
        f"stored rows {digest(data / 'purpleflea.sqlite')}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=6)
    parser.add_argument("--events", type=int, default=150_000, help="per file")
    parser.add_argument("--held", type=int, default=100_000, help="the lowered bound")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="pf-import-memory-") as scratch:
        root = Path(scratch)
        (root / "files").mkdir()
        write_files(root / "files", args.files, args.events)
        run(str(args.held), root / "files", root / "read_again")  # the smaller peak first
        run("default", root / "files", root / "held")


if __name__ == "__main__":
    main()
