"""The seq mark file (store/seqmark.py): its writes, a damaged file, and the bulk writers."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from purpleflea.commands import importer
from purpleflea.store import seqmark
from purpleflea.store.seqmark import SeqMark, StoreReplaced, mark_floor
from purpleflea.store.sqlite import SQLiteStore
from tests.events import stored_event
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


def _restore(backup: Path, to: Path) -> None:
    """Put the backup's files back as rsync and tar do: new files in place of the old."""
    for name in (to.name, to.name + ".seqmark"):
        partial = to.with_name(name + ".restoring")
        shutil.copy(backup / name, partial)
        os.replace(partial, to.with_name(name))


async def _store_up_to(db: Path, seq: int) -> None:
    store = SQLiteStore(db)
    try:
        last = await store.last_seq()
        await store.append([stored_event(n) for n in range(last + 1, seq + 1)])
    finally:
        await store.close()


async def test_a_store_restored_from_a_backup_with_its_mark_is_refused_not_renumbered(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A store and its mark backed up together agree with each other: restored after the
    node published more, it numbered again from the backup's last seq, giving published
    seqs a second time (a client resuming past them skips the new events)."""
    db = tmp_path / "data" / "history.sqlite"
    await _store_up_to(db, 5)
    mark = SeqMark.beside(db)
    assert mark is not None
    mark.finish(5)  # a clean stop, then the backup
    backup = tmp_path / "backup"
    backup.mkdir()
    for name in ("history.sqlite", "history.sqlite.seqmark"):
        shutil.copy(db.with_name(name), backup / name)
    assert mark.start(5) == 5
    await _store_up_to(db, 50)  # published up to 50
    mark.finish(50)
    _restore(backup, db)

    again = SeqMark.beside(db)
    assert again is not None
    with pytest.raises(StoreReplaced, match=r"not the file this mark was written beside"):
        again.start(5)
    with pytest.raises(StoreReplaced, match="--seq-floor N"):
        mark_floor(db)  # a bulk writer would number from 6 too
    # The operator names the highest seq clients may have seen: numbering continues after it,
    # and the mark now stands beside this file (the next start, and imports, take it).
    floored = SeqMark.beside(db, floor=50)
    assert floored is not None
    with caplog.at_level("INFO", logger="purpleflea.seqmark"):
        assert floored.start(5) == 50
    assert floored.check is not None
    assert floored.check.skipped == 45
    # The store is below what clients may have seen: it lost its tail (docs/live.md), in
    # health, metrics and an ERROR. It said "no published event is missing" (INFO), and
    # store_lost_tail false: the restored mark's own stored seq (5) was compared, not the floor.
    assert floored.check.lost_tail
    assert floored.health()["store_lost_tail"] is True
    [line] = [r for r in caplog.records if r.levelname in ("ERROR", "INFO")]
    assert line.levelname == "ERROR", line.getMessage()
    assert "--seq-floor 50" in line.getMessage()
    assert "no published event is missing" not in line.getMessage()
    plain = SeqMark.beside(db)
    assert plain is not None
    assert plain.start(5) == 50
    assert mark_floor(db) == 50


async def test_a_folder_moved_after_a_clean_stop_starts_with_a_floor_of_zero(
    tmp_path: Path,
) -> None:
    db = tmp_path / "a" / "history.sqlite"
    await _store_up_to(db, 7)
    mark = SeqMark.beside(db)
    assert mark is not None
    mark.finish(7)
    moved = tmp_path / "b" / "history.sqlite"
    shutil.copytree(db.parent, moved.parent)  # another disk: new files
    with pytest.raises(StoreReplaced):
        SeqMark.beside(moved).start(7)  # type: ignore[union-attr]
    zero = SeqMark.beside(moved, floor=0)
    assert zero is not None
    assert zero.start(7) == 7  # nothing skipped
    assert zero.check is None
    # A mark of an earlier release names no store file: taken as it is.
    mark.path.write_text('{"seq": 9, "clean": true, "stored": 9}')
    assert SeqMark.beside(db).start(7) == 9  # type: ignore[union-attr]


def test_an_import_beside_a_replaced_store_names_the_command_that_settles_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # `purpleflea import` (and `sim`) have no --seq-floor: the refusal names the serve that
    # takes it. It said "Start once with --seq-floor N", which `purpleflea import` refuses as
    # an unknown argument.
    data = tmp_path / "data"
    asyncio.run(_store_up_to(data / importer.DB_NAME, 5))
    mark = SeqMark.beside(data / importer.DB_NAME)
    assert mark is not None
    mark.finish(5)
    moved = tmp_path / "moved"
    shutil.copytree(data, moved)  # new files: another store than the mark's
    assert _run(str(_file(tmp_path / "a.csv", T0, 3, **BTC)), "--data-dir", str(moved)) == 2
    err = capsys.readouterr().err
    assert err.startswith("purpleflea import: seq mark ")
    assert "once with purpleflea serve --seq-floor N" in err
    assert "Traceback" not in err


async def test_a_store_removed_and_made_anew_is_named_so_and_a_floor_of_zero_keeps_the_mark(
    tmp_path: Path,
) -> None:
    # The store file deleted (to simulate or import again) and made anew beside its mark: the
    # refusal said only "restored from a backup, copied or moved", and asked for the highest
    # seq clients may have seen, which the mark itself holds (numbering continues after the
    # higher of the floor and the mark).
    db = tmp_path / "data" / "history.sqlite"
    await _store_up_to(db, 5)
    mark = SeqMark.beside(db)
    assert mark is not None
    mark.finish(5)
    # Moved away rather than unlinked: its inode stays taken (a file system reuses a freed
    # inode number at once, and the new file would pass for the old: see docs/live.md).
    db.rename(db.with_name("removed.sqlite"))
    await _store_up_to(db, 0)  # a new, empty store file
    with pytest.raises(StoreReplaced) as refused:
        SeqMark.beside(db).start(0)  # type: ignore[union-attr]
    assert "removed and made anew" in str(refused.value)
    assert "the higher of N and this mark's seq 5" in str(refused.value)
    zero = SeqMark.beside(db, floor=0)
    assert zero is not None
    assert zero.start(0) == 5  # nothing published is given again


async def test_a_new_store_beside_a_mark_that_handed_out_no_seq_is_taken(tmp_path: Path) -> None:
    # A server that never published (mark at seq 0), its store file deleted and made anew by
    # `sim` or `import`: nothing published can be given again, yet every command refused the
    # new file until `serve --seq-floor 0`.
    db = tmp_path / "data" / "history.sqlite"
    await _store_up_to(db, 0)
    mark = SeqMark.beside(db)
    assert mark is not None
    mark.finish(0)
    db.rename(db.with_name("removed.sqlite"))  # its inode stays taken: the new file differs
    await _store_up_to(db, 3)
    again = SeqMark.beside(db)
    assert again is not None
    assert again.start(3) == 3
    assert mark_floor(db) == 0


async def test_a_restore_into_the_freed_inode_number_is_still_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """tar (or ``rm`` then ``cp``) removes the store and writes the backup's copy at once: on
    ext4 the copy mostly gets the freed inode number (20 of 20 by hand), and the mark, which
    compared inode numbers alone, took the restored store and its restored mark for the files
    it was written beside. The inode's generation number tells them apart. The number's reuse
    is made certain here; tests/reliability/test_chaos_serve.py restores a served folder so."""
    db = tmp_path / "data" / "history.sqlite"
    await _store_up_to(db, 5)
    mark = SeqMark.beside(db)
    assert mark is not None
    mark.finish(5)
    written = json.loads(mark.path.read_text())
    backup = tmp_path / "backup"
    backup.mkdir()
    for name in ("history.sqlite", "history.sqlite.seqmark"):
        shutil.copy(db.with_name(name), backup / name)
    await _store_up_to(db, 50)  # published up to 50
    mark.finish(50)
    ino = written["store_ino"]
    for name in ("history.sqlite", "history.sqlite.seqmark"):
        db.with_name(name).unlink()
        shutil.copy(backup / name, db.with_name(name))
    real = seqmark.file_identity
    monkeypatch.setattr(
        seqmark,
        "file_identity",
        lambda path: None if real(path) is None else (real(path)[0], ino),  # type: ignore[index]
    )
    again = SeqMark.beside(db)
    assert again is not None
    with pytest.raises(StoreReplaced, match=r"not the file this mark was written beside"):
        again.start(5)


def _other_process_counts(db: Path) -> int:
    """The events another process reads in ``db``, opening and closing its own connection
    (as ``purpleflea export``, ``backtest`` or a stream worker does beside a server)."""
    code = (
        "import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); "
        "print(c.execute('SELECT count(*) FROM liquidations').fetchone()[0]); c.close()"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(db)], check=True, capture_output=True, text=True
    )
    return int(done.stdout)


async def test_a_reservation_keeps_the_servers_sqlite_locks(tmp_path: Path) -> None:
    """Reading the store's inode generation opened and closed the store file, and closing any
    descriptor of a file drops all of the process's POSIX locks on it, SQLite's too: another
    process closing its connection then took itself for the last, checkpointed and deleted
    the -wal and -shm the server still wrote to. The server's later events went into a
    deleted file: no other process saw them (measured: a reader counted 5 of 6)."""
    db = tmp_path / "data" / "history.sqlite"
    store = SQLiteStore(db)
    try:
        await store.append([stored_event(n) for n in range(1, 6)])
        mark = SeqMark.beside(db)
        assert mark is not None
        assert mark.start(5) == 5
        mark.reserve(6, stored=5)  # the server reserves seqs as it publishes
        assert _other_process_counts(db) == 5  # a reader opens and closes the store
        await store.append([stored_event(6)])
        assert _other_process_counts(db) == 6
    finally:
        await store.close()
