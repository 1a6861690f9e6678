"""A data folder serves one market: simulated or real, never both as one history."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from msgspec.structs import replace

from purpleflea.commands.export import write_csv
from purpleflea.model import Liquidation
from purpleflea.server.folder_source import mixed_source, newest_event_id
from purpleflea.server.sources import SIM_STATE_FILE
from purpleflea.store.coverage import imported_hours, open_coverage_store
from purpleflea.store.sqlite import SQLiteStore
from tests.events import stored_event


async def _folder(tmp_path: Path, prefix: str, count: int = 3) -> tuple[Path, Path]:
    data = tmp_path / "data"
    db = data / "purpleflea.sqlite"
    store = SQLiteStore(db)
    try:
        await store.append([stored_event(i, prefix=prefix) for i in range(1, count + 1)])
    finally:
        await store.close()
    return data, db


async def test_a_simulated_folder_is_refused_to_live_and_replay(tmp_path: Path) -> None:
    data, db = await _folder(tmp_path, "sim-0-1796578858728")
    assert newest_event_id(db) == "sim-0-1796578858728:3"
    assert mixed_source(data, db, "sim") is None  # the simulator continues its own market
    for source in ("live", "replay"):
        refusal = mixed_source(data, db, source)
        assert refusal is not None
        assert str(data) in refusal
        assert "simulated market" in refusal
        assert f"--source {source}" in refusal
        assert "--data-dir" in refusal


async def test_the_simulator_s_state_alone_marks_the_folder(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / SIM_STATE_FILE).write_bytes(b"")  # a market saved before any event was stored
    refusal = mixed_source(data, data / "purpleflea.sqlite", "live")
    assert refusal is not None
    assert SIM_STATE_FILE in refusal


async def test_a_folder_of_real_events_is_refused_to_the_simulator(tmp_path: Path) -> None:
    data, db = await _folder(tmp_path, "binance_usdm")
    assert mixed_source(data, db, "live") is None
    refusal = mixed_source(data, db, "sim")
    assert refusal is not None
    assert "real events" in refusal
    assert "binance_usdm:3" in refusal


async def test_the_simulator_s_folder_ending_with_a_venue_shaped_id_continues(
    tmp_path: Path,
) -> None:
    # The demo's simulated Hyperliquid accounts are liquidated under ids shaped as the real
    # venue's: when one was the newest event at a stop (CI: a SIGKILL in the chaos restart
    # test), the restart of the same simulator was refused as a folder of real events.
    data, db = await _folder(tmp_path, "sim-0-1796578858728")
    await _append(db, [stored_event(4, prefix="hyperliquid", exchange="hyperliquid")])
    (data / SIM_STATE_FILE).write_bytes(b"")
    assert mixed_source(data, db, "sim") is None
    assert mixed_source(data, db, "live") is not None


async def test_real_history_imported_into_the_simulator_s_folder_is_refused_to_it(
    tmp_path: Path,
) -> None:
    # Its state file made the folder the simulator's whatever its newest event: real history
    # imported there after a demo (both default to ./data) was continued by the simulator,
    # its market added to the real events', where the refusal said "holds real events".
    data, db = await _folder(tmp_path, "sim-0-1796578858728")
    (data / SIM_STATE_FILE).write_bytes(b"")
    await _append(db, [stored_event(i, prefix="binance_usdm") for i in (4, 5)])
    refusal = mixed_source(data, db, "sim")
    assert refusal is not None
    assert "real events" in refusal
    assert "binance_usdm:5" in refusal


async def _append(db: Path, events: list[Liquidation]) -> None:
    store = SQLiteStore(db)
    try:
        await store.append(events)
    finally:
        await store.close()


@pytest.mark.parametrize("source", ["sim", "live", "none"])
def test_a_new_folder_serves_any_source(tmp_path: Path, source: str) -> None:
    data = tmp_path / "data"
    assert mixed_source(data, data / "purpleflea.sqlite", source) is None


async def test_serve_says_so_in_one_line_before_opening_anything(tmp_path: Path) -> None:
    data, _ = await _folder(tmp_path, "sim-0-1796578858728")
    done = subprocess.run(
        [sys.executable, "-m", "purpleflea.cli", "serve", "--data-dir", str(data),
         "--source", "live", "--port", "0"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode != 0
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("purpleflea serve: data dir"), done.stderr
    assert "Purple Flea tracker" not in done.stdout


#: A real Hyperliquid liquidation's id (the normalizer's: hash, liquidated user, coin, tid).
_HL_ID = "hyperliquid:0x{:064x}:0x{:040x}:BTC:{}"


def _real_hyperliquid(count: int) -> list[Liquidation]:
    return [
        stored_event(
            i,
            id=_HL_ID.format(i, i, 400_000_000_000_000 + i),
            exchange="hyperliquid",
            symbol="BTC",
            market="BTC-PERP",
        )
        for i in range(1, count + 1)
    ]


async def _exported(path: Path, events: list[Liquidation]) -> Path:
    async def pages() -> AsyncIterator[list[Liquidation]]:
        yield events

    await write_csv(pages(), path)
    return path


async def test_importing_real_history_into_the_simulator_s_folder_is_refused(
    tmp_path: Path,
) -> None:
    # The demo and `purpleflea import` both default to ./data. Real Hyperliquid history (an
    # export of a live tracker's folder) imported after a demo was stored beside the
    # simulated market, and `serve` then continued the simulator on top of it: the
    # simulator's own Hyperliquid-shaped events are passed over in the folder rule, so the
    # real ones were too.
    data, db = await _folder(tmp_path, "sim-0-1796578858728")
    (data / SIM_STATE_FILE).write_bytes(b"")
    export = await _exported(tmp_path / "hyperliquid.csv", _real_hyperliquid(3))
    done = subprocess.run(
        [sys.executable, "-m", "purpleflea.cli", "import", "--data-dir", str(data),
         "--no-progress", str(export)],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 2, done.stdout + done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(f"purpleflea import: data dir {data} holds a simulated market")
    assert "--data-dir" in lines[0]
    assert newest_event_id(db) == "sim-0-1796578858728:3"  # nothing stored


async def test_a_simulator_s_folder_that_real_history_was_imported_into_is_refused_to_it(
    tmp_path: Path,
) -> None:
    # A folder an import reached before the importer refused it (what that import left: the
    # events, and their hours in the imported hours' table): the simulator is refused it by
    # those hours, whichever exchange's they are.
    data, db = await _folder(tmp_path, "sim-0-1796578858728")
    (data / SIM_STATE_FILE).write_bytes(b"")
    real = [replace(e, seq=e.seq + 3) for e in _real_hyperliquid(3)]  # after the sim's 3
    await _append(db, real)
    coverage = open_coverage_store(str(db))
    try:
        await coverage.record_imported(imported_hours(real))
    finally:
        await coverage.close()
    refusal = mixed_source(data, db, "sim")
    assert refusal is not None
    assert str(data) in refusal
    assert "imported" in refusal
    assert "hyperliquid" in refusal
    assert "--data-dir" in refusal
    assert mixed_source(data, db, "live") is not None  # still the simulator's market too


async def test_a_folder_simulated_history_was_imported_into_takes_the_rest_of_it(
    tmp_path: Path,
) -> None:
    # An export of `sim --days` history imported into a new folder: its newest event has a
    # simulated id, and the importer took that alone for the simulator's folder: an import
    # interrupted after its first batches could never be completed (the run again refused).
    data, db = await _folder(tmp_path, "sim-0-1796578858728", count=2)
    coverage = open_coverage_store(str(db))
    try:  # what an import's first batch records beside its events
        await coverage.record_imported(
            imported_hours([stored_event(i, prefix="sim-0-1796578858728") for i in (1, 2)])
        )
    finally:
        await coverage.close()
    rest = [stored_event(i, prefix="sim-0-1796578858728") for i in range(1, 6)]
    export = await _exported(tmp_path / "sim.csv", rest)
    done = subprocess.run(
        [sys.executable, "-m", "purpleflea.cli", "import", "--data-dir", str(data),
         "--no-progress", str(export)],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert newest_event_id(db) == "sim-0-1796578858728:5"
