"""How long `purpleflea serve --source sim` takes to store its first liquidation, as a user
starting the demo waits for it: wall seconds from the launch and the server's CPU seconds by
then (user + system, its threads included), which say what a loaded machine stretches.

Run (from the repository root)::

    nice -n 10 .venv/bin/python bench/sim_first_liquidation.py --runs 3

Each run starts a server on a fresh data folder (default seed 0, 275 markets, as `serve`
runs it), polls its SQLite store (read-only) every 20 ms and stops it at the first stored
liquidation. Prints one line a run and the load average before and after.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from procfs import cpu_seconds


def _first_seq(db: Path) -> int | None:
    if not db.exists():
        return None
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1.0) as conn:
            row = conn.execute("SELECT MIN(seq) FROM liquidations").fetchone()
    except sqlite3.OperationalError:  # not created yet, or busy
        return None
    return None if row is None else row[0]


def one_run(args: argparse.Namespace) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="sim-first-") as folder:
        data = Path(folder)
        command = [sys.executable, "-m", "purpleflea.cli", "serve", "--data-dir", str(data)]
        command += ["--host", "127.0.0.1", "--port", "0", "--source", "sim"]
        command += ["--seed", str(args.seed), "--markets", str(args.markets)]
        launched = time.monotonic()
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        found: dict[str, float] = {}
        try:
            while process.poll() is None and time.monotonic() - launched < args.timeout:
                if "serving_s" not in found and (data / "server.json").exists():
                    try:
                        if json.loads((data / "server.json").read_text()).get("pid") == process.pid:
                            found["serving_s"] = time.monotonic() - launched
                            found["serving_cpu_s"] = cpu_seconds(process.pid)
                    except ValueError:
                        pass
                if _first_seq(data / "purpleflea.sqlite") is not None:
                    found["first_s"] = time.monotonic() - launched
                    found["first_cpu_s"] = cpu_seconds(process.pid)
                    break
                time.sleep(0.02)
        finally:
            process.terminate()
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if "first_s" not in found:
            raise SystemExit(f"no liquidation stored within {args.timeout} s")
        return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--markets", type=int, default=275)
    parser.add_argument("--timeout", type=float, default=600.0)
    args = parser.parse_args()
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    for run in range(args.runs):
        got = one_run(args)
        print(
            f"run {run}: serving after {got.get('serving_s', float('nan')):.1f} s wall "
            f"({got.get('serving_cpu_s', float('nan')):.2f} s CPU); first liquidation stored "
            f"after {got['first_s']:.1f} s wall, {got['first_cpu_s']:.2f} s CPU"
        )
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
