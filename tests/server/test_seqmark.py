"""A seq is never given twice, even after the SQLite store lost its tail (store/seqmark.py).

The loss is simulated as a power loss or a damaged ``-wal`` file leaves it: the last events
deleted from the store file behind the server's back while it is down, the mark file kept.
"""

from __future__ import annotations

import json
import logging
import shutil
import sqlite3
from pathlib import Path

import httpx
import pytest

import purpleflea
from purpleflea.bus.local import LocalBus
from purpleflea.model import Liquidation
from purpleflea.server.pipeline import Pipeline
from purpleflea.server.webhook_policy import WebhookSettings
from purpleflea.store.factory import DB_FILE
from purpleflea.store.file_guard import file_generation
from purpleflea.store.seqmark import SeqMark, StoreReplaced
from purpleflea.store.sqlite import SQLiteStore
from tests.server.conftest import make_config, running_server, venue_event
from tests.server.test_stream import _collect
from tests.server.webhook_receiver import receiver, until


def _lose_tail(db: Path, keep_upto: int) -> None:
    """Delete every event and alert above ``keep_upto`` from the store file (it is closed)."""
    with sqlite3.connect(db) as connection:
        connection.execute("DELETE FROM liquidations WHERE seq > ?", (keep_upto,))
        connection.execute("DELETE FROM cascades WHERE seq > ?", (keep_upto,))
    connection.close()


def _pipeline(db: Path, *, ahead: int = 10_000, floor: int | None = None) -> Pipeline:
    store = SQLiteStore(db)
    return Pipeline(store, LocalBus(), seq_mark=SeqMark.beside(db, ahead=ahead, floor=floor))


async def _crash_after(db: Path, count: int, *, ahead: int) -> None:
    """A pipeline over ``db`` publishes ``count`` events and ends without a stop (a kill -9)."""
    crashed = _pipeline(db, ahead=ahead)
    await crashed.start()
    await _push(crashed, count)
    await crashed.store.close()


async def _push(pipeline: Pipeline, count: int) -> list[Liquidation]:
    subscription = pipeline.bus.subscribe()
    for _ in range(count):
        pipeline.submit(venue_event())
    await pipeline.drain()
    got = [m.payload for m in subscription.drain() if isinstance(m.payload, Liquidation)]
    subscription.close()
    return got


async def test_after_the_store_lost_its_tail_a_resuming_client_gets_the_new_events(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config = make_config(tmp_path)
    async with running_server(config) as live:
        client = purpleflea.LiquidationClient(api_key=live.key, base_url=live.url)
        async with client.stream() as stream:
            await live.push(*[venue_event() for _ in range(30)])
            seen = await _collect(stream, 30)
            cursor = stream.last_seq
        handed_out = live.server.tracker.core.next_seq - 1  # events and any alerts
    assert cursor is not None
    assert cursor >= 30
    _lose_tail(tmp_path / DB_FILE, keep_upto=10)

    caplog.set_level(logging.ERROR, logger="purpleflea.seqmark")
    async with running_server(config) as live:
        assert await live.server.store.last_seq() == 10
        # Disconnected meanwhile: new events come in after the restart.
        await live.push(*[venue_event() for _ in range(5)])
        client = purpleflea.LiquidationClient(api_key=live.key, base_url=live.url)
        async with client.stream(since_seq=cursor) as stream:
            new = await _collect(stream, 5)
        async with httpx.AsyncClient(base_url=live.url) as http:
            headers = {"Authorization": f"Bearer {live.key}"}
            health = (await http.get("/v1/health", headers=headers)).json()
            metrics = (await http.get("/v1/metrics", headers=headers)).text
    # Above every seq handed out before (events and alerts), none skipped by the client.
    seqs = [e.seq for e in new]
    assert seqs[0] == handed_out + 1
    assert seqs == sorted(seqs)
    assert min(seqs) > max(e.seq for e in seen)
    [error] = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert f"lost its last {handed_out - 10} seqs" in error.getMessage()
    assert health["seq_mark"]["store_lost_tail"] is True
    assert health["seq_mark"]["skipped_at_start"] == handed_out - 10
    assert "purpleflea_store_lost_tail 1" in metrics
    assert f"purpleflea_seq_mark_skipped_at_start {handed_out - 10}" in metrics


async def test_a_clean_restart_continues_with_no_gap(tmp_path: Path) -> None:
    db = tmp_path / "db.sqlite"
    first = _pipeline(db)
    await first.start()
    before = await _push(first, 7)
    await first.stop()
    await first.store.close()
    assert json.loads((tmp_path / "db.sqlite.seqmark").read_text()) == {
        "seq": 7,
        "clean": True,
        "stored": 7,
        "store_ino": db.stat().st_ino,  # the store file it stands beside
        "store_gen": file_generation(db),  # and that inode's generation (ext4 reuses numbers)
    }

    second = _pipeline(db)
    await second.start()
    after = await _push(second, 3)
    await second.stop()
    await second.store.close()
    assert [e.seq for e in before + after] == list(range(1, 11))
    assert second.seq_mark is not None
    assert second.seq_mark.check is None


async def test_after_a_crash_and_a_lost_tail_seqs_go_on_above_every_reservation(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    db = tmp_path / "db.sqlite"
    crashed = _pipeline(db, ahead=10)
    await crashed.start()
    handed: list[Liquidation] = []
    for _ in range(10):  # one plan each: the mark is raised every ~10 seqs
        handed += await _push(crashed, 4)
    assert [e.seq for e in handed] == list(range(1, 41))
    # kill -9: no stop, so the mark file holds a reservation, not the exact last seq.
    await crashed.store.close()
    reserved = json.loads((tmp_path / "db.sqlite.seqmark").read_text())
    assert reserved["clean"] is False
    assert reserved["seq"] >= 40
    _lose_tail(db, keep_upto=25)

    caplog.set_level(logging.WARNING, logger="purpleflea.seqmark")
    restarted = _pipeline(db, ahead=10)
    await restarted.start()
    new = await _push(restarted, 3)
    await restarted.stop()
    await restarted.store.close()
    assert [e.seq for e in new] == [reserved["seq"] + 1, reserved["seq"] + 2, reserved["seq"] + 3]
    [error] = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert error.levelno == logging.ERROR
    assert "lost its tail" in error.getMessage()
    assert restarted.seq_mark is not None
    assert restarted.seq_mark.check is not None
    assert restarted.seq_mark.check.lost_tail


async def test_a_crash_with_nothing_lost_skips_the_unused_reservation_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    db = tmp_path / "db.sqlite"
    await _crash_after(db, 5, ahead=100)

    caplog.set_level(logging.WARNING, logger="purpleflea.seqmark")
    restarted = _pipeline(db, ahead=100)
    await restarted.start()
    [event] = await _push(restarted, 1)
    await restarted.stop()
    await restarted.store.close()
    assert event.seq == 5 + 100 + 1
    [warning] = caplog.records
    assert warning.levelno == logging.WARNING
    assert "did not stop cleanly" in warning.getMessage()


async def test_a_store_without_a_mark_file_numbers_from_its_last_seq(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    db = tmp_path / "db.sqlite"
    old = Pipeline(SQLiteStore(db), LocalBus())  # an earlier release: no mark
    await old.start()
    await _push(old, 4)
    await old.stop()
    await old.store.close()
    assert not (tmp_path / "db.sqlite.seqmark").exists()

    caplog.set_level(logging.WARNING, logger="purpleflea.seqmark")
    upgraded = _pipeline(db)
    await upgraded.start()
    [event] = await _push(upgraded, 1)
    assert event.seq == 5
    assert json.loads((tmp_path / "db.sqlite.seqmark").read_text())["seq"] == 5 + 10_000
    await upgraded.stop()
    await upgraded.store.close()
    assert not caplog.records


async def test_the_mark_is_written_once_per_reservation_not_per_batch(tmp_path: Path) -> None:
    db = tmp_path / "db.sqlite"
    pipeline = _pipeline(db, ahead=50)
    await pipeline.start()
    for _ in range(20):
        await _push(pipeline, 5)  # 100 seqs in 20 batches
    assert pipeline.seq_mark is not None
    assert pipeline.seq_mark.writes == 2  # at seq 5 (up to 55) and at 60 (up to 110)
    await pipeline.stop()
    await pipeline.store.close()
    assert pipeline.seq_mark.writes == 3  # the exact last seq at the clean stop


async def test_a_damaged_wal_copy_opens_short_and_numbering_goes_on_after_the_mark(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # A real damaged -wal, not a deletion: the store's files copied while it is open (its
    # WAL not checkpointed into the file), 64 bytes overwritten in the middle of the WAL.
    db = tmp_path / "a" / "history.sqlite"
    first = _pipeline(db)
    await first.start()
    for _ in range(100):
        await _push(first, 10)
    await first.stop()  # clean: the mark is exactly 1000
    copy = tmp_path / "b"
    copy.mkdir()
    for suffix in ("", "-wal", ".seqmark"):
        shutil.copy(f"{db}{suffix}", copy / f"history.sqlite{suffix}")
    await first.store.close()
    wal = copy / "history.sqlite-wal"
    with wal.open("r+b") as handle:
        handle.seek(wal.stat().st_size // 2)
        handle.write(b"\xff" * 64)

    caplog.set_level(logging.ERROR, logger="purpleflea.seqmark")
    # A copy is another file than the mark's: refused unless the operator gives a floor.
    with pytest.raises(StoreReplaced):
        await _pipeline(copy / "history.sqlite").start()
    reopened = _pipeline(copy / "history.sqlite", floor=1000)
    await reopened.start()
    short = await reopened.store.last_seq()
    [event] = await _push(reopened, 1)
    await reopened.stop()
    await reopened.store.close()
    assert short < 1000  # SQLite opened it at the last good transaction, silently
    assert event.seq == 1001
    [error] = caplog.records
    assert f"lost its last {1000 - short} seqs" in error.getMessage()


async def test_after_the_store_lost_its_tail_a_webhook_gets_the_new_events(
    tmp_path: Path,
) -> None:
    settings = WebhookSettings(attempts=3, backoff_s=0.01, timeout_s=5.0, reload_s=0.05)
    config = make_config(tmp_path, webhooks=settings, rate_per_s=1_000.0, rate_burst=1_000.0)
    async with receiver() as box:
        async with running_server(config) as live:
            async with httpx.AsyncClient(
                base_url=live.url, headers={"Authorization": f"Bearer {live.key}"}
            ) as http:
                made = await http.post("/v1/webhooks", json={"url": box.url})
            box.secret = made.json()["secret"]
            await live.push(*[venue_event() for _ in range(20)])
            await until(lambda: len(box.deliveries) == 20, what="the first 20 deliveries")
        # Stopped cleanly: the webhook is settled at the last seq it was sent.
        _lose_tail(tmp_path / DB_FILE, keep_upto=5)
        async with running_server(config) as live:
            new = [venue_event() for _ in range(3)]
            await live.push(*new)
            await until(lambda: len(box.deliveries) == 23, what="the new events' deliveries")
    sent = [d.frame["data"] for d in box.deliveries]  # type: ignore[index]
    assert [e["id"] for e in sent[20:]] == [e.id for e in new]
    assert min(e["seq"] for e in sent[20:]) > max(e["seq"] for e in sent[:20])


async def test_a_clean_stop_after_a_skip_with_no_event_since_is_not_a_lost_tail(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # A crash, then a restart that skips the unused reservation (a warning), stopped cleanly
    # before any event came in: the store lost nothing, and the next start must not say so.
    db = tmp_path / "db.sqlite"
    await _crash_after(db, 5, ahead=100)

    quiet = _pipeline(db, ahead=100)
    await quiet.start()  # skips 6..105, warned
    await quiet.stop()  # no event since
    await quiet.store.close()

    caplog.clear()
    caplog.set_level(logging.INFO, logger="purpleflea.seqmark")
    again = _pipeline(db, ahead=100)
    await again.start()
    [event] = await _push(again, 1)
    await again.stop()
    await again.store.close()
    assert event.seq == 5 + 100 + 1  # still never a skipped seq given again
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []
    assert again.seq_mark is not None
    assert again.seq_mark.check is not None
    assert not again.seq_mark.check.lost_tail
    assert again.seq_mark.health()["store_lost_tail"] is False


async def test_a_lost_tail_is_reported_once_not_again_after_a_clean_stop_with_no_event(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    db = tmp_path / "db.sqlite"
    first = _pipeline(db)
    await first.start()
    await _push(first, 30)
    await first.stop()
    await first.store.close()
    _lose_tail(db, keep_upto=10)

    caplog.set_level(logging.WARNING, logger="purpleflea.seqmark")
    noticed = _pipeline(db)
    await noticed.start()
    await noticed.stop()
    await noticed.store.close()
    [error] = caplog.records
    assert "lost its last 20 seqs" in error.getMessage()

    caplog.clear()
    later = _pipeline(db)
    await later.start()
    [event] = await _push(later, 1)
    await later.stop()
    await later.store.close()
    assert event.seq == 31
    assert caplog.records == []  # the same gap, already reported: nothing new was lost
    assert later.seq_mark is not None
    assert later.seq_mark.check is not None
    assert not later.seq_mark.check.lost_tail

    # And a store that loses more after that clean stop is a loss again.
    _lose_tail(db, keep_upto=5)
    caplog.clear()
    shorter = _pipeline(db)
    await shorter.start()
    await shorter.stop()
    await shorter.store.close()
    [error] = caplog.records
    assert error.levelno == logging.ERROR
    assert "held seq 31 when this node stopped cleanly" in error.getMessage()
    assert "lost its last 26 seqs" in error.getMessage()


async def test_a_clean_stop_after_a_duplicate_the_store_dropped_is_not_a_lost_tail(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # A batch ending in an event the store already held (a reconnect's replay after a
    # restart: stored by id before, dropped) left the SQLite store's last seq at the dropped
    # event's seq, never stored: the clean stop wrote it as the store's, and the next start,
    # finding the store below it, logged an ERROR that published events were lost and
    # reported store_lost_tail.
    db = tmp_path / "db.sqlite"
    first = _pipeline(db)
    await first.start()
    replayed = venue_event()
    first.submit(replayed)
    await first.drain()
    await first.stop()
    await first.store.close()

    after = _pipeline(db)
    await after.start()
    after.submit(venue_event())
    after.submit(replayed)  # dropped by the store, never published
    await after.drain()
    await after.stop()
    assert await after.store.last_seq() == 2
    await after.store.close()

    caplog.set_level(logging.INFO, logger="purpleflea.seqmark")
    again = _pipeline(db)
    await again.start()
    await again.stop()
    await again.store.close()
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []
    assert again.seq_mark is not None
    assert again.seq_mark.check is None or not again.seq_mark.check.lost_tail
