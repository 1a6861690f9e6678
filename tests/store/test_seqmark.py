"""The seq mark file (store/seqmark.py): its writes, a damaged file, and the bulk writers."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from purpleflea.commands import importer
from purpleflea.store.seqmark import SeqMark, mark_floor
from purpleflea.store.sqlite import SQLiteStore
from tests.history_io.test_import_order import BTC, T0, _file, _run, _stored


def test_a_reservation_is_replaced_whole_and_leaves_no_temporary_file(tmp_path: Path) -> None:
    mark = SeqMark.beside(tmp_path / "history.sqlite", ahead=100)
    assert mark is not None
    mark.reserve(7, stored=3)
    mark.reserve(50, stored=40)  # within the reservation: no write
    assert json.loads(mark.path.read_text()) == {"seq": 107, "clean": False, "stored": 3}
    mark.finish(60)
    assert json.loads(mark.path.read_text()) == {"seq": 60, "clean": True, "stored": 60}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["history.sqlite.seqmark"]
    assert mark.writes == 2


def test_a_damaged_mark_is_refused_naming_the_file(tmp_path: Path) -> None:
    mark = SeqMark.beside(tmp_path / "history.sqlite")
    assert mark is not None
    mark.path.write_text('{"seq": 12')
    with pytest.raises(ValueError, match=r"history\.sqlite\.seqmark: not a seq mark"):
        mark.start(5)
    mark.path.write_text('{"seq": -1, "clean": true, "stored": 0}')
    with pytest.raises(ValueError, match="whole numbers"):
        mark.start(5)


def test_an_in_memory_store_has_no_mark() -> None:
    assert SeqMark.beside(":memory:") is None
    assert mark_floor(":memory:") == 0


def test_an_import_numbers_after_a_mark_above_the_store(tmp_path: Path) -> None:
    data = tmp_path / "data"
    assert _run(str(_file(tmp_path / "a.csv", T0, 3, **BTC)), "--data-dir", str(data)) == 0
    # The server had published up to seq 40 before the store lost its tail.
    mark = SeqMark.beside(data / importer.DB_NAME)
    assert mark is not None
    mark.finish(40)
    later = T0 + 3_600_000
    assert _run(str(_file(tmp_path / "b.csv", later, 2, **BTC)), "--data-dir", str(data)) == 0
    assert [e.seq for e in _stored(data)] == [1, 2, 3, 41, 42]


def test_a_simulated_history_numbers_after_a_mark_above_the_store(tmp_path: Path) -> None:
    from purpleflea.sim.history import generate_history  # numpy and the simulator: here only

    db = tmp_path / "history.sqlite"
    mark = SeqMark.beside(db)
    assert mark is not None
    mark.finish(1_000)

    async def simulate() -> tuple[int, int]:
        store = SQLiteStore(db)
        try:
            summary = await generate_history(store, days=0.02, n_markets=5, progress=False, seed=3)
            first = await store.since(0, limit=1)
            return first[0].seq, summary.first_seq
        finally:
            await store.close()

    assert asyncio.run(simulate()) == (1_001, 1_001)


def test_an_import_beside_a_damaged_mark_stops_in_one_line_before_reading(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / f"{importer.DB_NAME}.seqmark").write_text('{"seq": 12')
    # Was a ValueError traceback, raised after every file had been read.
    assert _run(str(_file(tmp_path / "a.csv", T0, 3, **BTC)), "--data-dir", str(data)) == 2
    err = capsys.readouterr().err
    assert err.startswith("purpleflea import: seq mark ")
    assert f"{importer.DB_NAME}.seqmark: not a seq mark" in err
    assert "Traceback" not in err
    assert not (data / importer.DB_NAME).exists()  # stopped before the store was made
