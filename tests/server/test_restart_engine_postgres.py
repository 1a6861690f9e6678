"""With a PostgreSQL store the cascade engine is continued too, by a restart and by a standby.

The engine's state and journal live in the database (tables of the store's schema), not in a
file beside it: a restart of the ingest node continues its engine, and so does a standby on
another machine taking the sequencer lock over, which could never read a file beside the
failed node's store. Before, a PostgreSQL store kept no state and each start warmed the engine
from the stored events (14-47 cascades followed by only one of the two engines,
bench/warm_causes.py).
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import msgspec
import psycopg
import pytest

from purpleflea.bus.local import LocalBus
from purpleflea.engine import CascadeEngine
from purpleflea.engine.heatmap_feed import HeatmapFeed
from purpleflea.server.app import engine_state
from purpleflea.server.engine_state_postgres import PostgresEngineState
from purpleflea.server.heatmap_relay import PublishingSink
from purpleflea.server.pipeline import Pipeline
from purpleflea.store import postgres
from purpleflea.store.base import StoreUnavailable
from purpleflea.store.postgres import PostgresStore
from purpleflea.venues import registry
from tests.server.conftest import T0, make_config, running_server, venue_event
from tests.server.crash_child import AFTER_JOURNAL_WRITTEN, LIVE, STORE_URL
from tests.server.engine_life import MINUTE, checkpointed, life_after_checkpoint, snapshot
from tests.services import ensure_postgres

ROOT = Path(__file__).resolve().parents[2]


_TABLES = (
    "liquidations, rollup_1m, rollup_1h, rollup_1h_pending, cascades, open_interest, "
    "coverage_factor, coverage_factor_method, engine_state, engine_journal"
)


@pytest.fixture
async def dsn() -> AsyncIterator[str]:
    """The session's database with no tables, and none of this test's left for the next."""
    url = ensure_postgres()
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as connection:
        await connection.execute(f"DROP TABLE IF EXISTS {_TABLES}")
    yield url
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as connection:
        await connection.execute(f"DROP TABLE IF EXISTS {_TABLES}")


async def _tracker(
    dsn: str, *, publishing: bool = False
) -> tuple[Pipeline, CascadeEngine, PostgresStore]:
    """A tracker as the server builds one on a PostgreSQL store (its own connections);
    ``publishing``: as an ingest node on a NATS bus builds it (its heatmap's changes
    published: the feed inside a :class:`PublishingSink`)."""
    store = await PostgresStore.connect(dsn)
    engine = CascadeEngine()
    feed = HeatmapFeed(fuel=engine)
    tracker = Pipeline(
        store,
        LocalBus(),
        scorer=engine,
        heatmap=PublishingSink(feed) if publishing else feed,
        engine_state=engine_state(store),
    )
    await tracker.start(tick_interval=3600.0)
    return tracker, engine, store


async def _states(dsn: str) -> list[tuple[int, bytes]]:
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as connection:
        cursor = await connection.execute("SELECT slot, body FROM engine_state ORDER BY slot")
        return [(slot, bytes(body)) for slot, body in await cursor.fetchall()]


async def _put_back(dsn: str, states: list[tuple[int, bytes]]) -> None:
    """The state rows as they were (the clean stop's state never written: a crash)."""
    async with (
        await psycopg.AsyncConnection.connect(dsn, autocommit=True) as connection,
        connection.transaction(),
    ):
        await connection.execute("DELETE FROM engine_state")
        for slot, body in states:
            await connection.execute(
                "INSERT INTO engine_state (slot, body) VALUES (%s, %s)", (slot, body)
            )


async def test_a_postgres_tracker_stopped_cleanly_continues_its_engine(dsn: str) -> None:
    tracker, engine, store = await _tracker(dsn)
    assert tracker.engine_start == ""
    await checkpointed(tracker)
    await life_after_checkpoint(tracker, engine)
    await tracker.stop()
    await store.close()

    again, restarted, store = await _tracker(dsn)
    try:
        assert again.engine_start == "continued"  # was "warmed": nothing kept
        assert restarted.export_state() == engine.export_state()
    finally:
        await again.stop()
        await store.close()


@pytest.mark.parametrize("publishing", [False, True], ids=["role-all", "ingest-on-nats"])
async def test_after_a_crash_the_postgres_tracker_continues_the_engine_that_ran(
    dsn: str, publishing: bool
) -> None:
    # ingest-on-nats: the heatmap's fuel and open interest reached the engine through the
    # sink that publishes the heatmap's changes, and were never journaled.
    tracker, engine, store = await _tracker(dsn, publishing=publishing)
    await checkpointed(tracker)
    checkpoint = await _states(dsn)
    assert checkpoint, "the checkpoint is in the database"
    await life_after_checkpoint(tracker, engine)
    await tracker.stop()
    await store.close()
    await _put_back(dsn, checkpoint)

    again, restarted, store = await _tracker(dsn, publishing=publishing)
    try:
        assert again.engine_start == "continued"
        # The events stored after the checkpoint and what the journal holds after its marker
        # (the fuel, open interest and tick) replayed: every number of the engine that ran.
        assert restarted.export_state() == engine.export_state()
    finally:
        await again.stop()
        await store.close()


async def test_a_standby_taking_over_continues_the_engine_that_ran(dsn: str) -> None:
    # The ingest node is killed (no clean stop: its tasks end, its connections close); a
    # standby, a second tracker with its own connections to the same database, starts.
    tracker, engine, store = await _tracker(dsn)
    await checkpointed(tracker)
    await life_after_checkpoint(tracker, engine)
    await tracker._tick(T0 + 230_000)  # the journal is written at the ticks
    saved = tracker.engine_state
    assert saved is not None
    await saved.journal.written()
    for task in (tracker._ticker, tracker._task):
        assert task is not None
        task.cancel()
    await store.close()

    standby, continued, standby_store = await _tracker(dsn)
    try:
        assert standby.engine_start == "continued"
        assert continued.export_state() == engine.export_state()
    finally:
        await standby.stop()
        await standby_store.close()


async def _life(dsn: str, events: int, first: int) -> Pipeline:
    """A tracker that takes ``events`` liquidations and stops cleanly."""
    tracker, _, store = await _tracker(dsn)
    for i in range(events):
        tracker.submit(venue_event(size_usd=20_000.0, price=60_000.0 - i, ts=T0 + first + 500 * i))
    await tracker.drain()
    await tracker.stop()
    await store.close()
    return tracker


async def _execute(dsn: str, sql: str) -> None:
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as connection:
        await connection.execute(sql.encode())


async def test_a_damaged_newest_state_row_is_removed_and_the_one_before_continued(
    dsn: str,
) -> None:
    await _life(dsn, 40, 0)
    kept = await _life(dsn, 0, 0)  # the state at 40 twice: the newest and the previous
    assert kept.engine_start == "continued"
    await _execute(
        dsn, "UPDATE engine_state SET body = substring(body from 1 for 100) WHERE slot = 0"
    )
    after = await _life(dsn, 0, 0)
    assert after.engine_start == "continued"
    assert isinstance(after.scorer, CascadeEngine)
    assert isinstance(kept.scorer, CascadeEngine)
    assert after.scorer.export_state() == kept.scorer.export_state()


async def test_a_state_row_past_the_end_of_the_store_is_removed(dsn: str) -> None:
    # The store lost its last events (a restore of an older backup of the events alone): a
    # state taken after them knows events the store does not hold.
    await _life(dsn, 40, 0)
    await _execute(dsn, "DELETE FROM liquidations WHERE seq > 30")
    after = await _life(dsn, 0, 0)
    assert after.engine_start == "warmed"
    assert isinstance(after.scorer, CascadeEngine)
    saved = after.scorer.export_state()["markets"]
    assert isinstance(saved, dict)
    assert max(side["last_ts"] for pair in saved.values() for side in pair) == T0 + 29 * 500


async def test_a_state_row_of_another_history_is_not_continued(dsn: str) -> None:
    # The anchor: the store holds another event at the state's seq (its events replaced).
    await _life(dsn, 40, 0)
    await _execute(dsn, "UPDATE liquidations SET id = id || '-other' WHERE seq = 40")
    after = await _life(dsn, 0, 0)
    assert after.engine_start == "warmed"


async def test_a_journal_write_the_database_refused_stops_it_until_the_next_checkpoint(
    dsn: str,
) -> None:
    # A write that failed (the database gone, the sequencer lock lost) leaves a gap in the
    # checkpoint's records: they are removed (a replay of part of them would tell the engine
    # part of what it was told) and the journal waits for the next checkpoint's marker.
    tracker, _, store = await _tracker(dsn)
    saved = tracker.engine_state
    assert isinstance(saved, PostgresEngineState)
    await checkpointed(tracker)
    first = await _states(dsn)
    nonce = msgspec.msgpack.decode(first[0][1])["journal"]
    tracker.on_snapshot(snapshot(T0 + 2 * MINUTE, 59_500.0, 0.8e9))
    saved.journal.flush(tick=True)
    await saved.journal.written()
    assert await saved.journal.records_after(nonce), "the snapshot's records written"

    async def refuse(connection: object) -> None:
        raise StoreUnavailable("this node does not write: another ingest node took over")

    store.write_guard = refuse
    tracker.on_snapshot(snapshot(T0 + 3 * MINUTE, 59_400.0, 0.7e9))
    saved.journal.flush(tick=True)
    await saved.journal.written()
    assert tracker.counters["journal_write_errors"] == 1
    assert not saved.journal.recording
    store.write_guard = None
    tracker.checkpoint_wall_s = 0.0
    tracker.advance_clock(T0 + 4 * MINUTE)
    await tracker._tick(T0 + 4 * MINUTE)  # the next checkpoint begins the journal again
    assert tracker._checkpointing is not None
    await tracker._checkpointing
    assert saved.journal.recording
    assert await saved.journal.records_after(nonce) is None
    await tracker.stop()
    await store.close()


async def test_a_refused_journal_write_removes_its_rows_before_the_next_checkpoint(
    dsn: str,
) -> None:
    # The rows of a checkpoint whose journal write failed were removed only with the next
    # write, which is the next checkpoint's marker (a minute of the clock later): a crash in
    # between replayed the rows written before the failure, and not the stored ticks after
    # it, where the docs promise the stored ticks (the records cut short told the engine
    # part of what it was told). Once the database takes writes again, the next tick's
    # removes them.
    tracker, _, store = await _tracker(dsn)
    saved = tracker.engine_state
    assert isinstance(saved, PostgresEngineState)
    await checkpointed(tracker)
    nonce = msgspec.msgpack.decode((await _states(dsn))[0][1])["journal"]
    tracker.on_snapshot(snapshot(T0 + 2 * MINUTE, 59_500.0, 0.8e9))
    await tracker._tick(T0 + 2 * MINUTE)
    await saved.journal.written()
    assert await saved.journal.records_after(nonce), "the snapshot's records written"

    async def refuse(connection: object) -> None:
        raise StoreUnavailable("PostgreSQL restarting")

    store.write_guard = refuse
    tracker.on_snapshot(snapshot(T0 + 3 * MINUTE, 59_400.0, 0.7e9))
    await tracker._tick(T0 + 3 * MINUTE)
    await saved.journal.written()
    assert tracker.counters["journal_write_errors"] == 1
    store.write_guard = None  # back, no checkpoint due yet
    await tracker._tick(T0 + 3 * MINUTE + 1_000)
    await saved.journal.written()
    assert tracker._checkpointing is None or tracker._checkpointing.done()
    assert not saved.journal.recording
    assert await saved.journal.records_after(nonce) is None
    await tracker.stop()
    await store.close()


async def test_a_refused_journal_write_after_a_failed_state_leaves_no_records_to_replay(
    dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A checkpoint's state not written (PostgreSQL going away) leaves the one before it the
    # newest, whose replay spans both intervals; the journal's next write failing too, the
    # second interval's rows were removed and the first's kept: a replay of the continued
    # state's marker told the engine the first interval's records alone.
    tracker, _, store = await _tracker(dsn)
    saved = tracker.engine_state
    assert isinstance(saved, PostgresEngineState)
    await checkpointed(tracker)
    nonce = msgspec.msgpack.decode((await _states(dsn))[0][1])["journal"]
    tracker.on_snapshot(snapshot(T0 + 2 * MINUTE, 59_500.0, 0.8e9))
    await tracker._tick(T0 + 2 * MINUTE)
    await saved.journal.written()
    assert await saved.journal.records_after(nonce)

    async def refused_state(*args: object, **kwargs: object) -> float:
        await saved.journal.written()  # the marker written, then the state refused
        raise StoreUnavailable("PostgreSQL going away")

    monkeypatch.setattr(saved, "put", refused_state)
    tracker.checkpoint_wall_s = 0.0
    tracker.advance_clock(T0 + 4 * MINUTE)
    await tracker._tick(T0 + 4 * MINUTE)
    assert tracker._checkpointing is not None
    await tracker._checkpointing
    assert msgspec.msgpack.decode((await _states(dsn))[0][1])["journal"] == nonce
    tracker.checkpoint_wall_s = 1e9

    async def refuse(connection: object) -> None:
        raise StoreUnavailable("PostgreSQL going away")

    store.write_guard = refuse
    tracker.on_snapshot(snapshot(T0 + 5 * MINUTE, 59_400.0, 0.7e9))
    await tracker._tick(T0 + 5 * MINUTE)
    await saved.journal.written()
    assert tracker.counters["journal_write_errors"] == 1
    store.write_guard = None
    await tracker._tick(T0 + 5 * MINUTE + 1_000)
    await saved.journal.written()
    assert await saved.journal.records_after(nonce) is None
    monkeypatch.undo()
    await tracker.stop()
    await store.close()


@pytest.mark.usefixtures("quick_warmup")
async def test_after_a_sigkill_the_postgres_tracker_continues_the_engine_that_ran(
    dsn: str, tmp_path: Path
) -> None:
    # A served simulator on the PostgreSQL store killed with SIGKILL between two plans, right
    # after its journal's last write (tests/server/crash_child.py): the restart continues its
    # checkpoint from the database and replays the events and the journal written after it,
    # every number of the engine that ran. (Killed at any other moment it also loses what
    # the journal had not written yet, up to ~1 s: docs/cascade.md, Restart.)
    child = [sys.executable, "-m", "tests.server.crash_child", str(tmp_path), "1500", "25", "30"]
    died = await asyncio.to_thread(
        subprocess.run,
        child,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
        env={**os.environ, STORE_URL: dsn, AFTER_JOURNAL_WRITTEN: "1"},
    )
    assert died.returncode == -signal.SIGKILL, died.stderr[-3000:]
    live = CascadeEngine(fill_priced=registry.fill_priced())
    live.restore_state(msgspec.msgpack.decode((tmp_path / LIVE).read_bytes()))

    async with running_server(make_config(tmp_path, store_url=dsn)) as again:
        tracker = again.server.tracker
        restarted = tracker.scorer
        assert isinstance(restarted, CascadeEngine)
        assert tracker.engine_start == "continued"
        state = restarted.export_state()
        following = sorted(alert.id for alert in restarted.active())
    assert any(live.score(market, "long") for market in tracker.markets), "it scored"
    assert following == sorted(alert.id for alert in live.active())
    assert state == live.export_state()


async def test_the_engine_state_gives_up_on_a_database_that_does_not_answer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Its connection was opened with no connect_timeout, where the store's have one: a
    # database that stopped answering (a failover, a network split) held the start's load,
    # each checkpoint and the stop's last state ~130 s a connection (the kernel's retries;
    # here, a listener that never answers, for ever).
    monkeypatch.setattr(postgres, "CONNECT_TIMEOUT_S", 1)
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)  # connections complete in the backlog; nothing ever answers
        port = silent.getsockname()[1]
        state = PostgresEngineState(PostgresStore(f"postgresql://x@127.0.0.1:{port}/x"))
        loaded = await asyncio.wait_for(state.load(CascadeEngine(), 100, within=10), 10)
        assert loaded is None
        with pytest.raises(StoreUnavailable):
            await asyncio.wait_for(state.put({}, 1), 10)
        await state.close()
