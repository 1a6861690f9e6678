"""The engine journal's files: what a replay reads back after a checkpoint's marker."""

from __future__ import annotations

import os
from pathlib import Path

from purpleflea.server.engine_journal import EngineJournal, Fuel, OpenInterest, Tick


def test_the_records_after_a_marker_are_read_back_across_the_two_files(tmp_path: Path) -> None:
    journal = EngineJournal(tmp_path / "db.sqlite.engine")
    assert journal.after(1) is None  # no file yet
    journal.told(Tick(0, 5))  # before any checkpoint began it: not written
    journal.begin(1, 10)
    first = [
        OpenInterest(10, "BTC-PERP", 1e9, "binance_usdm:BTCUSDT"),
        Fuel(10, "BTC-PERP", "long", 1.25),
        Fuel(10, "BTC-PERP", "short", 0.5),
        Tick(12, 1_760_000_000_000),
    ]
    for record in first:
        journal.told(record)
    journal.flush()
    journal.begin(2, 12)  # the next checkpoint: the file above becomes the previous one
    second = [Fuel(12, "BTC-PERP", "long", 0.75), Fuel(13, "ETH-PERP", "short", 2.0)]
    for record in second:
        journal.told(record)
    journal.close()
    assert journal.after(1) == first + second
    assert journal.after(2) == second
    assert journal.after(3) is None
    assert journal.path.stat().st_size + journal.previous.stat().st_size == journal.bytes


def test_a_torn_last_frame_ends_the_records(tmp_path: Path) -> None:
    journal = EngineJournal(tmp_path / "db.sqlite.engine")
    journal.begin(7, 0)
    journal.told(Fuel(0, "BTC-PERP", "long", 1.5))
    journal.flush()
    journal.told(Fuel(1, "BTC-PERP", "short", 0.5))
    journal.close()
    data = journal.path.read_bytes()
    journal.path.write_bytes(data[:-3])  # the last write cut short by a crash
    assert journal.after(7) == [Fuel(0, "BTC-PERP", "long", 1.5)]


def test_a_failed_write_stops_the_journal_until_the_next_checkpoint(tmp_path: Path) -> None:
    # A full disk: the records after the failure would reach the replay with a gap (the
    # engine told part of what it was told), so the checkpoint's file goes and none are kept.
    journal = EngineJournal(tmp_path / "db.sqlite.engine")
    journal.begin(1, 0)
    journal.told(Fuel(0, "BTC-PERP", "long", 1.5))
    journal.flush()
    fd = journal._fd
    assert fd is not None
    os.close(fd)  # the next write fails (EBADF), as a write to a full disk would (ENOSPC)
    journal._fd = os.open(os.devnull, os.O_RDONLY)
    journal.told(Fuel(1, "BTC-PERP", "short", 0.5))
    journal.flush()
    assert journal.counters["journal_write_errors"] == 1
    assert not journal.recording
    assert journal.after(1) is None
    journal.told(Fuel(2, "BTC-PERP", "short", 0.7))  # not recording: nothing kept
    journal.begin(2, 2)
    journal.told(Fuel(3, "BTC-PERP", "long", 1.1))
    journal.close()
    assert journal.after(2) == [Fuel(3, "BTC-PERP", "long", 1.1)]


def test_a_frame_of_the_wrong_values_ends_the_records(tmp_path: Path) -> None:
    # A frame that decodes but holds a ratio that is no number raised ValueError out of the
    # replay, and the tracker did not start.
    journal = EngineJournal(tmp_path / "db.sqlite.engine")
    journal.begin(7, 0)
    journal.told(Fuel(0, "BTC-PERP", "long", 1.5))
    journal.flush()
    journal._add_frame([1, [0, 0, "abc"]])
    journal.told(Fuel(2, "BTC-PERP", "short", 0.5))
    journal.close()
    assert journal.after(7) == [Fuel(0, "BTC-PERP", "long", 1.5)]


def test_a_journal_file_that_cannot_be_read_is_passed_over(tmp_path: Path) -> None:
    journal = EngineJournal(tmp_path / "db.sqlite.engine")
    journal.begin(1, 0)
    journal.told(Fuel(0, "BTC-PERP", "long", 1.5))
    journal.begin(2, 1)
    journal.told(Fuel(1, "BTC-PERP", "short", 0.5))
    journal.close()
    journal.previous.unlink()
    journal.previous.mkdir()  # the previous file cannot be read: the marker 2 is in the other
    assert journal.after(2) == [Fuel(1, "BTC-PERP", "short", 0.5)]
    assert journal.after(1) is None
    journal.previous.rmdir()
    journal.begin(3, 2)  # the file with marker 2 becomes the previous one
    journal.told(Fuel(2, "BTC-PERP", "long", 0.7))
    journal.close()
    journal.path.unlink()
    journal.path.mkdir()  # the records after marker 2 in the current file: a gap
    assert journal.after(2) is None


def test_a_failed_write_after_a_checkpoint_whose_state_failed_too_leaves_no_records(
    tmp_path: Path,
) -> None:
    # A full disk fails a checkpoint's state (the one before it is continued) and then the
    # journal's write (its new file removed): the records of the continued state's marker
    # were read from the previous file alone, without those of the removed one, and the
    # replay told the engine part of what it was told.
    journal = EngineJournal(tmp_path / "db.sqlite.engine")
    journal.begin(1, 0)  # checkpoint 1: its state written
    journal.told(Fuel(0, "BTC-PERP", "long", 1.5))
    journal.flush()
    journal.begin(2, 1)  # checkpoint 2: its state not written (the disk full)
    journal.told(Fuel(1, "BTC-PERP", "short", 0.5))
    journal.flush()
    fd = journal._fd
    assert fd is not None
    os.close(fd)  # the next write fails, as on the full disk
    journal._fd = os.open(os.devnull, os.O_RDONLY)
    journal.told(Fuel(2, "BTC-PERP", "short", 0.4))
    journal.flush()
    assert not journal.path.exists()
    assert journal.after(1) is None
