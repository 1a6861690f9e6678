"""Ctrl-C (SIGINT) and SIGTERM in the middle of the long commands other than ``serve``: each
stops within seconds, says so in one line, exits with 128 + the signal, prints no traceback,
and leaves what it wrote as its docs say.

Found: SIGTERM killed them outright (-15: no cleanup, a bulk load's rollback left to the next
open); an interrupted ``export`` left a shorter file at ``--out`` that read as a whole export.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
from pathlib import Path

import pytest

from tests.commands.signals import Command, assert_stopped

PROMPT_S = 8.0
START_S = 60.0


def _events(store: Path) -> int:
    with sqlite3.connect(store) as db:
        return int(db.execute("SELECT count(*) FROM liquidations").fetchone()[0])


def _in_group(pgid: int) -> list[int]:
    """Processes left in process group ``pgid`` (the command's own, its children's)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[3]) == pgid:
                found.append(int(entry))
    return found


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data folder with a simulated day (~120,000 events): an export takes seconds."""
    data = tmp_path_factory.mktemp("history")
    command = Command("sim", "--days", "1", "--store", str(data), "--no-progress")
    status, _ = command.exit(240)
    assert status == 0, command.output
    return data


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_an_interrupted_export_leaves_no_file_that_looks_whole(
    history: Path, tmp_path: Path, signum: signal.Signals
) -> None:
    out = tmp_path / "day.csv"
    command = Command("export", "--format", "csv", "--out", str(out), "--data-dir", str(history))
    command.wait_for(
        lambda: any(f.stat().st_size > 0 for f in tmp_path.glob("*day.csv*")),
        START_S,
        "rows written",
    )
    (partial,) = tmp_path.glob(".day.csv.*.partial")  # the export's own
    command.send(signum)
    status, took = command.exit(PROMPT_S * 3)
    assert_stopped(command, status, signum)
    assert took < PROMPT_S, f"{took:.1f} s to stop:\n{command.output}"
    assert not out.exists()
    assert not partial.exists()


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_an_interrupted_bulk_sim_leaves_the_empty_store_and_no_child(
    tmp_path: Path, signum: signal.Signals
) -> None:
    store = tmp_path / "purpleflea.sqlite"
    command = Command("sim", "--days", "30", "--store", str(tmp_path), start_new_session=True)
    # The progress bar's first advance: the child simulates, the parent writes.
    command.wait_for_line("simulating", START_S)
    command.send(signum)
    status, took = command.exit(PROMPT_S * 3)
    assert_stopped(command, status, signum)
    assert took < PROMPT_S, f"{took:.1f} s to stop:\n{command.output}"
    assert _events(store) == 0  # the load's one transaction rolled back (docs/simulator.md)
    command.wait_for(lambda: not _in_group(command.process.pid), PROMPT_S, "the child's exit")


def _stored(store: Path) -> int:
    """Events in ``store`` while another process writes it (0 before it exists)."""
    if not store.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{store}?mode=ro", uri=True, timeout=5) as db:
            return int(db.execute("SELECT count(*) FROM liquidations").fetchone()[0])
    except sqlite3.OperationalError:  # the table not made yet
        return 0


@pytest.fixture(scope="module")
def exported(history: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int]:
    """The day as a CSV export, and how many events it holds."""
    out = tmp_path_factory.mktemp("exported") / "history.csv"
    command = Command("export", "--format", "csv", "--out", str(out), "--data-dir", str(history))
    status, _ = command.exit(240)
    assert status == 0, command.output
    return out, _events(history / "purpleflea.sqlite")


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_an_interrupted_import_stops_between_batches_and_a_run_again_completes_it(
    exported: tuple[Path, int], tmp_path: Path, signum: signal.Signals
) -> None:
    # Before, the interrupt waited for the whole import (asyncio.run's cancel never reached
    # its synchronous work): every event stored, 16-35 s later, then "stopped".
    csv_file, total = exported
    store = tmp_path / "purpleflea.sqlite"
    command = Command("import", str(csv_file), "--data-dir", str(tmp_path))
    command.wait_for(lambda: _stored(store) > 0, START_S, "the first batch stored")
    command.send(signum)
    status, took = command.exit(PROMPT_S * 6)
    assert_stopped(command, status, signum)
    assert took < PROMPT_S, f"{took:.1f} s to stop:\n{command.output}"
    assert 0 < _events(store) < total
    again = Command("import", str(csv_file), "--data-dir", str(tmp_path), "--no-progress")
    status, _ = again.exit(240)
    assert status == 0, again.output
    assert _events(store) == total


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_mcp_waiting_for_its_host_stops_at_once(signum: signal.Signals) -> None:
    # Before, it never stopped: its read of stdin, on a thread, waits for a line or the end.
    command = Command(
        "mcp", "--url", "http://127.0.0.1:9", "--api-key", "pf_unused", stdin_pipe=True
    )
    hello = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {
            "protocolVersion": "2025-06-18",
            "capabilities": {},
            "clientInfo": {"name": "tests", "version": "0"},
        },
    }
    assert command.process.stdin is not None
    command.process.stdin.write(json.dumps(hello) + "\n")
    command.process.stdin.flush()
    command.wait_for_line('"serverInfo"', START_S)  # answered: it now waits for the next line
    command.send(signum)
    status, took = command.exit(PROMPT_S * 3)
    assert_stopped(command, status, signum)
    assert took < PROMPT_S, f"{took:.1f} s to stop:\n{command.output}"
