"""Bulk history into a store, the sim command, and real-time pacing."""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from purpleflea.clock import utc_iso
from purpleflea.model import Liquidation, VenueLiquidation
from purpleflea.sim import SimConfig, Simulator, generate_history, history, history_child, paced
from purpleflea.sim.history import blocks, history_config
from purpleflea.sim.history_child import (
    MALLOC_TUNABLES,
    ChildFailed,
    ChildProducer,
    Request,
    child_environment,
)
from purpleflea.sim.process import DAY_MS, DEFAULT_START_MS
from purpleflea.sim.throttle import snapshot_throttle
from purpleflea.store.base import OpenInterest, Query
from purpleflea.store.bulk import EventColumns
from purpleflea.store.oi_sampler import OpenInterestSampler
from purpleflea.store.sqlite import SQLiteBulkLoad, SQLiteStore
from tests.events import T0, stored_alert, stored_event
from tests.server.conftest import Running
from tests.store.test_bulk_load import TABLES, dump_tables


@pytest.fixture
def children(monkeypatch: pytest.MonkeyPatch) -> list[ChildProducer]:
    """The simulation processes the bulk history starts, as they start."""
    started: list[ChildProducer] = []

    class Recorded(ChildProducer):
        def __init__(self, request: Request) -> None:
            super().__init__(request)
            started.append(self)

    monkeypatch.setattr(history, "ChildProducer", Recorded)
    return started


async def test_history_goes_into_sqlite_with_consecutive_seqs(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "h.sqlite")
    try:
        first = await generate_history(store, days=0.05, seed=8, n_markets=20, progress=False)
        assert first.events > 100
        assert (first.first_seq, first.last_seq) == (1, first.events)
        assert await store.last_seq() == first.events
        stored = await store.since(0, limit=first.events + 10)
        assert [e.seq for e in stored] == list(range(1, first.events + 1))
        assert all(e.id.startswith("sim-8-") and e.received_at > e.ts for e in stored)
        assert sum(e.size_usd for e in stored) == pytest.approx(first.notional_usd)
        page = await store.query(Query(markets=("BTC-PERP",), limit=5))
        assert page.events
        assert all(e.market == "BTC-PERP" for e in page.events)

        scored: list[VenueLiquidation] = []

        def scorer(event: VenueLiquidation) -> int:
            scored.append(event)
            return 7

        second = await generate_history(  # the next day: history goes on in time order
            store,
            days=0.02,
            seed=5,
            n_markets=20,
            scorer=scorer,
            progress=False,
            start_ms=DEFAULT_START_MS + DAY_MS,
        )
        assert second.first_seq == first.events + 1
        assert len(scored) == second.events
        tail = await store.since(first.events, limit=10)
        assert tail
        assert all(e.cascade_score == 7 and e.id.startswith("sim-5-") for e in tail)
    finally:
        await store.close()


async def test_history_stores_each_markets_open_interest_through_the_sampler(
    tmp_path: Path,
) -> None:
    store = SQLiteStore(tmp_path / "h.sqlite")
    try:
        summary = await generate_history(store, days=0.25, seed=4, n_markets=20, progress=False)
        rows = await store.open_interest(0, 2**62, limit=100_000)
    finally:
        await store.close()
    # The same open interest, listing by listing through the live server's sampler, round by
    # round, gives the same rows (up to the rounding of a sum).
    sim = Simulator(history_config(seed=4, n_markets=20))
    block = history_config().block_ms
    rounds = list(range(summary.start_ms + block, summary.end_ms + 1, block))
    sampler = OpenInterestSampler()
    expected: list[OpenInterest] = []
    btc_listings: list[float] = []
    for raw in blocks(sim, 0.25):
        snapshots = sim.snapshots(raw.end_ms)
        if not btc_listings:
            btc_listings = [s.open_interest_usd for s in snapshots if s.market == "BTC-PERP"]
        for snapshot in snapshots:
            sampler.note(snapshot)
        expected += sampler.sample()
    assert [(r.ts, r.market) for r in rows] == [(r.ts, r.market) for r in expected]
    for row, want in zip(rows, expected, strict=True):
        assert row.open_interest_usd == pytest.approx(want.open_interest_usd, rel=1e-9)
    assert {row.market for row in rows} == {spec.name for spec in sim.markets}
    # Fewer rows than one per market and round, and at least the heartbeat's.
    per_market = Counter(row.market for row in rows)
    assert len(rows) < len(rounds) * len(per_market)
    assert all(count >= len(rounds) // 3 for count in per_market.values())
    assert all(row.ts in rounds and row.open_interest_usd > 0 for row in rows)
    # A row is the sum over the market's listings, not one listing's.
    assert len(btc_listings) > 1
    first_btc = next(row for row in rows if row.market == "BTC-PERP")
    assert first_btc.ts == rounds[0]
    assert first_btc.open_interest_usd == pytest.approx(sum(btc_listings), rel=1e-12)


def test_history_is_the_same_for_the_same_seed(tmp_path: Path) -> None:
    async def ids(path: Path) -> list[tuple[str, float]]:
        store = SQLiteStore(path)
        try:
            await generate_history(store, days=0.02, seed=8, n_markets=10, progress=False)
            return [(e.id, e.size_usd) for e in await store.since(0, limit=100_000)]
        finally:
            await store.close()

    assert asyncio.run(ids(tmp_path / "a.sqlite")) == asyncio.run(ids(tmp_path / "b.sqlite"))


def test_sim_command_writes_the_store_and_prints_a_summary(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from purpleflea.commands import sim

    parser = argparse.ArgumentParser()
    sim.register(parser.add_subparsers(dest="command"))
    path = tmp_path / "cli.sqlite"
    argv = [
        *("sim", "--days", "0.02", "--store", str(path), "--markets", "8"),
        *("--no-progress", "--start", "2025-03-01"),
    ]
    args = parser.parse_args(argv)
    assert args.run(args) == 0
    out = capsys.readouterr().out
    assert "2025-03-01 00:00" in out
    assert "events" in out
    assert "cascades" in out
    assert path.exists()
    # The same command again goes on after the history's last stored event: nothing is left.
    again = parser.parse_args(argv)
    assert again.run(again) == 0
    out = capsys.readouterr().out
    assert "  resumed     after seq " in out
    # It printed "events 0 (seq 8,612..8,611)", a range ending before it begins.
    assert ", stored by an earlier run\n  events      0 (the span was stored already)\n" in out
    with pytest.raises(SystemExit):  # refused as the flags are read (test_flags.py)
        parser.parse_args(["sim", "--days", "0", "--store", str(path)])
    with pytest.raises(SystemExit):
        parser.parse_args(["sim", "--days", "1", "--start", "March"])


async def test_paced_follows_the_wall_clock() -> None:
    sim = Simulator(SimConfig(n_markets=5))
    loop = asyncio.get_running_loop()
    began = loop.time()
    steps = []
    async for step in paced(sim, speed=20.0):  # 250 ms steps -> 12.5 ms each
        steps.append(step)
        if len(steps) == 16:
            break
    elapsed = loop.time() - began
    assert steps[-1].ts - steps[0].ts == 15 * 250
    assert 16 * 0.25 / 20 * 0.9 <= elapsed < 2.0
    with pytest.raises(ValueError, match="speed"):
        await anext(paced(sim, speed=0))


async def test_history_in_many_batches_stores_exactly_the_simulators_stream(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Small batches: the simulation runs a batch ahead of the writes, many times over.
    monkeypatch.setattr(history, "BATCH", 250)
    store = SQLiteStore(tmp_path / "h.sqlite")
    fresh = SQLiteStore(tmp_path / "fresh.sqlite")
    try:
        summary = await generate_history(store, days=0.1, seed=8, n_markets=20, progress=False)
        stored = await store.since(0, limit=1_000_000)
        indexes = "SELECT name FROM sqlite_master WHERE type = 'index' ORDER BY name"
        assert (
            store._writer.execute(indexes).fetchall() == fresh._writer.execute(indexes).fetchall()
        )
    finally:
        await store.close()
        await fresh.close()
    assert summary.events > 10 * 250
    sim = Simulator(history_config(seed=8, n_markets=20))
    throttle = snapshot_throttle(sim)  # history is the feeds' view: snapshot venues thinned
    expected: list[Liquidation] = []
    for raw in blocks(sim, 0.1):
        expected += history.published(sim, throttle.thin(raw), len(expected) + 1)
    assert throttle.hidden > 0
    assert stored == expected


async def test_a_failing_scorer_stops_history_with_its_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(history, "BATCH", 300)
    calls = 0

    def scorer(event: VenueLiquidation) -> int:
        nonlocal calls
        calls += 1
        if calls > 1_000:
            raise RuntimeError("scorer broke")
        return 1

    store = SQLiteStore(tmp_path / "h.sqlite")
    try:
        with pytest.raises(RuntimeError, match="scorer broke"):
            await generate_history(
                store, days=0.1, seed=6, n_markets=20, scorer=scorer, progress=False
            )
        stored = await store.since(0, limit=1_000_000)
        # What was written is a whole prefix of the stream, seqs without a gap.
        assert 0 < len(stored) <= 1_000
        assert [e.seq for e in stored] == list(range(1, len(stored) + 1))
        page = await store.query(Query(markets=("BTC-PERP",), limit=5))
        assert all(e.market == "BTC-PERP" for e in page.events)
    finally:
        await store.close()


async def test_a_bulk_load_that_fails_stops_history_and_leaves_the_store_empty(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, children: list[ChildProducer]
) -> None:
    monkeypatch.setattr(history, "BATCH", 300)
    appends = 0
    append = SQLiteBulkLoad.append

    def failing(self: SQLiteBulkLoad, columns: EventColumns) -> None:
        nonlocal appends
        appends += 1
        if appends == 3:
            raise OSError("disk full")
        append(self, columns)

    monkeypatch.setattr(SQLiteBulkLoad, "append", failing)
    store = SQLiteStore(tmp_path / "h.sqlite")
    fresh = SQLiteStore(tmp_path / "fresh.sqlite")
    try:
        with pytest.raises(OSError, match="disk full"):
            await generate_history(store, days=0.1, seed=6, n_markets=20, progress=False)
        # The simulation's process is stopped, not left simulating the rest.
        [child] = children
        assert child._process.returncode is not None
        # All or nothing: no partial history that looks like a finished one.
        assert await store.since(0) == []
        assert await store.last_seq() == 0
        assert await store.open_interest(0, 2**62) == []
        schema = "SELECT name, sql FROM sqlite_master ORDER BY name"
        assert store._writer.execute(schema).fetchall() == fresh._writer.execute(schema).fetchall()
    finally:
        await store.close()
        await fresh.close()


async def test_an_error_in_the_simulations_process_is_raised_as_itself(
    tmp_path: Path, children: list[ChildProducer]
) -> None:
    store = SQLiteStore(tmp_path / "h.sqlite")
    try:
        # The parent checks only the configuration; the child's simulator refuses the count.
        with pytest.raises(ValueError, match="n_markets must be between 1 and") as raised:
            await generate_history(store, days=0.01, n_markets=0, progress=False)
        assert await store.last_seq() == 0
    finally:
        await store.close()
    assert len(children) == 1
    # Where it happened: the child's traceback, chained as the cause.
    assert "in _simulate" in str(raised.value.__cause__)


def test_the_simulations_process_runs_with_malloc_told_to_keep_freed_memory(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # What the child is started with (glibc rewrites the variable in the child's own memory
    # as it reads it, so /proc shows no more than its first setting).
    popen = subprocess.Popen
    envs: list[dict[str, str]] = []

    def recording(*args: Any, **kwargs: Any) -> subprocess.Popen[bytes]:
        envs.append(kwargs["env"])
        return popen(*args, **kwargs)

    monkeypatch.setattr(history_child.subprocess, "Popen", recording)
    # The parent's own tunables come after (the last setting of a tunable wins), so they stay.
    monkeypatch.setenv("GLIBC_TUNABLES", "glibc.malloc.arena_max=2")
    producer = ChildProducer(Request(history_config(seed=0, n_markets=5), 0.1, 1, 50_000))
    try:
        assert producer.next_chunk() is not None  # it simulates with them
    finally:
        producer.close()
    assert envs[0]["GLIBC_TUNABLES"] == f"{MALLOC_TUNABLES}:glibc.malloc.arena_max=2"
    assert envs[0]["PATH"] == os.environ["PATH"]  # the rest is the parent's
    assert child_environment({"A": "1"}) == {"A": "1", "GLIBC_TUNABLES": MALLOC_TUNABLES}


async def test_a_simulation_process_that_dies_fails_history_with_its_exit_code(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, children: list[ChildProducer]
) -> None:
    # Many small batches: the child is still far from done at the first write.
    monkeypatch.setattr(history, "BATCH", 100)
    append = SQLiteBulkLoad.append
    appends = 0

    def killing(self: SQLiteBulkLoad, columns: EventColumns) -> None:
        nonlocal appends
        append(self, columns)
        appends += 1
        if appends == 1:
            os.kill(children[0].pid, signal.SIGKILL)  # as the OOM killer would

    monkeypatch.setattr(SQLiteBulkLoad, "append", killing)
    store = SQLiteStore(tmp_path / "h.sqlite")
    try:
        with pytest.raises(ChildFailed, match=r"exited with code -9 before it finished"):
            await generate_history(store, days=0.25, seed=3, n_markets=20, progress=False)
        assert await store.last_seq() == 0
        assert await store.since(0) == []
    finally:
        await store.close()


async def test_a_store_that_fails_stops_history_with_its_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(history, "BATCH", 300)

    class Failing(SQLiteStore):
        appends = 0

        async def append(self, events: Sequence[Liquidation]) -> list[Liquidation]:
            self.appends += 1
            if self.appends == 4:
                raise OSError("disk full")
            return await super().append(events)

    store = Failing(tmp_path / "h.sqlite")
    try:
        # A store that holds events takes history by appends, batch by batch.
        await generate_history(store, days=0.01, seed=5, n_markets=20, progress=False)
        before = await store.last_seq()
        assert before > 0
        with pytest.raises(OSError, match="disk full"):
            await generate_history(
                store,
                days=0.1,
                seed=6,
                n_markets=20,
                progress=False,
                start_ms=DEFAULT_START_MS + DAY_MS,
            )
        stored = await store.since(before, limit=1_000_000)
        assert stored  # the first two batches, whole
        assert [e.seq for e in stored] == list(range(before + 1, before + len(stored) + 1))
        page = await store.query(Query(markets=("BTC-PERP",), limit=5))
        assert all(e.market == "BTC-PERP" for e in page.events)
    finally:
        await store.close()


async def test_bulk_history_stores_what_appended_history_stores(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Many batches: rollup cells split across them, summed by upserts.
    monkeypatch.setattr(history, "BATCH", 400)

    class Appending(SQLiteStore):
        """SQLite without the bulk path: history goes in by appends, batch by batch."""

        bulk_load = None  # type: ignore[assignment]

    async def simulate(name: str, cls: type[SQLiteStore]) -> history.HistorySummary:
        store = cls(tmp_path / f"{name}.sqlite")
        try:
            return await generate_history(store, days=0.25, seed=3, n_markets=20, progress=False)
        finally:
            await store.close()

    # The bulk load simulates in a child process; appends and, with no interpreter to start
    # (an embedded Python), the bulk load too simulate in this one.
    summaries = [await simulate("bulk", SQLiteStore), await simulate("appended", Appending)]
    with monkeypatch.context() as embedded:
        embedded.setattr(sys, "executable", "")
        summaries.append(await simulate("in-process", SQLiteStore))
    assert summaries[0].events > 10 * 400
    assert (
        len({(s.events, s.markets, s.notional_usd, s.end_ms, s.cascades) for s in summaries}) == 1
    )
    bulk = dump_tables(tmp_path / "bulk.sqlite")
    assert bulk["liquidations"]
    assert bulk["open_interest"]
    for other in ("appended", "in-process"):
        tables = dump_tables(tmp_path / f"{other}.sqlite")
        for table in TABLES:
            assert bulk[table] == tables[table], (other, table)


async def test_sim_into_the_store_a_running_server_uses_says_so_in_one_line(
    live: Running,
) -> None:
    # A second writer would hand out the server's seqs again (an IntegrityError at best).
    store = live.server.config.store
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "purpleflea.cli",
        "sim",
        "--days",
        "0.01",
        "--markets",
        "4",
        "--no-progress",
        "--store",
        store,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode == 2
    lines = err.decode().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("purpleflea sim: ")
    assert "in use by purpleflea serve" in lines[0]
    assert "stop it first" in lines[0]
    assert out == b""


async def test_history_that_would_replay_out_of_time_order_is_refused(tmp_path: Path) -> None:
    # `purpleflea sim --days 1` into a store a server had written today appended yesterday
    # after today's events; a backtest (seq order) then replayed a day going back in time, and
    # the same day simulated again reported 181,564 events written while storing none.
    day = 86_400_000
    start = 1_764_547_200_000  # 2025-12-01
    store = SQLiteStore(tmp_path / "h.sqlite")
    try:
        first = await generate_history(
            store, days=0.02, seed=8, n_markets=10, start_ms=start, progress=False
        )
        last = (await store.since(first.last_seq - 1, limit=1))[0]
        for seed, again in ((8, start - day), (9, start)):
            with pytest.raises(ValueError, match="out of time order") as refused:
                await generate_history(
                    store, days=0.02, seed=seed, n_markets=10, start_ms=again, progress=False
                )
            assert str(refused.value) == (
                f"the store's last event (seq {first.last_seq:,}) is at "
                f"{utc_iso(last.ts)}, after the history's start {utc_iso(again)}: appended "
                "after it, the history would replay out of time order (backtests read seq "
                "order). Simulate into another store (--store), or from 2025-12-02 on (--start)"
            )
        assert await store.last_seq() == first.last_seq  # nothing written
        # The same history again goes on after its last stored event: none left to store.
        same = await generate_history(
            store, days=0.02, seed=8, n_markets=10, start_ms=start, progress=False
        )
        assert (same.events, same.resumed_after) == (0, last)
        assert await store.last_seq() == first.last_seq
        later = await generate_history(
            store, days=0.02, seed=8, n_markets=10, start_ms=start + day, progress=False
        )
        assert later.first_seq == first.last_seq + 1
    finally:
        await store.close()


async def test_history_before_a_served_store_ending_in_a_cascade_alert_is_refused(
    tmp_path: Path,
) -> None:
    # A folder `serve` wrote often ends in a cascade alert (a tick's or a restart's
    # 'exhausted', after the last event): alerts share the events' seqs, and the store's last
    # seq named no event, so the history was appended before the served events unrefused.
    store = SQLiteStore(tmp_path / "h.sqlite")
    try:
        await store.append([stored_event(1)])
        await store.append_cascades([stored_alert(2, status="exhausted")])
        with pytest.raises(ValueError, match="out of time order"):
            await generate_history(
                store, days=0.02, seed=8, n_markets=10, start_ms=T0 - DAY_MS, progress=False
            )
        assert await store.last_seq() == 2  # nothing written
    finally:
        await store.close()


@pytest.mark.parametrize("killed_in", ["append", "append_open_interest"])
async def test_history_interrupted_while_appending_resumes_where_it_stopped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, killed_in: str
) -> None:
    # `purpleflea sim --days 10` killed while appending to a store with history kept a partial
    # day, and the same command run again was refused as going back in time (its start lies
    # before the partial day's last event): run again, it now stores the rest, as one
    # uninterrupted run would have (same ids, seqs, open interest and rollups).
    monkeypatch.setattr(history, "BATCH", 300)
    start = DEFAULT_START_MS + DAY_MS
    run = {"days": 0.1, "seed": 6, "n_markets": 20, "progress": False, "start_ms": start}

    class Failing(SQLiteStore):
        fail_at = -1
        appends = 0

        async def append(self, events: Sequence[Liquidation]) -> list[Liquidation]:
            self.appends += 1
            if self.appends == self.fail_at and killed_in == "append":
                raise OSError("killed")
            return await super().append(events)

        async def append_open_interest(self, rows: Sequence[OpenInterest]) -> None:
            # Killed between a batch's events and its open interest: the rerun adds that.
            if self.appends == self.fail_at and killed_in == "append_open_interest":
                self.fail_at = -1  # (the rerun's first batches append no events)
                raise OSError("killed")
            await super().append_open_interest(rows)

    names = ("interrupted", "whole")
    summaries: dict[str, history.HistorySummary] = {}
    for name in names:
        store = Failing(tmp_path / f"{name}.sqlite")
        try:
            await generate_history(store, days=0.01, seed=5, n_markets=20, progress=False)
            if name == "interrupted":
                store.fail_at = store.appends + 4
                with pytest.raises(OSError, match="killed"):
                    await generate_history(store, **run)
                partial = await store.last_seq()
            summaries[name] = await generate_history(store, **run)
        finally:
            await store.close()
    interrupted, whole = (dump_tables(tmp_path / f"{name}.sqlite") for name in names)
    resumed = summaries["interrupted"]
    assert resumed.first_seq == partial + 1
    assert resumed.last_seq == summaries["whole"].last_seq
    assert resumed.resumed_after is not None
    assert resumed.resumed_after.seq == partial
    assert len(interrupted["liquidations"]) > partial > len(whole["liquidations"]) / 10
    for table in TABLES:
        assert interrupted[table] == whole[table], table


async def test_history_resumed_with_another_market_count_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Its ids share the prefix (seed and start), not its stream: resuming would mix two.
    monkeypatch.setattr(history, "BATCH", 300)
    store = SQLiteStore(tmp_path / "h.sqlite")
    try:
        first = await generate_history(store, days=0.02, seed=8, n_markets=10, progress=False)
        with pytest.raises(ValueError, match="cannot go on after it"):
            await generate_history(store, days=0.02, seed=8, n_markets=12, progress=False)
        assert await store.last_seq() == first.last_seq
    finally:
        await store.close()


def test_a_chunk_awaited_when_a_stop_cut_close_short_fails_instead_of_waiting_for_good() -> None:
    # `timeout 20 purpleflea sim ...` hung for good: timeout sends SIGTERM to the command and
    # to its group, the second signal raised KeyboardInterrupt inside close() after it had
    # told the reader to stop, so no Failed was queued, and the history's thread pool waited
    # at exit for the worker blocked in next_chunk on an empty queue (faulthandler's stack).
    producer = ChildProducer(Request(history_config(seed=0, n_markets=5), 0.1, 1, 50_000))
    producer._closing.set()  # close() cut short here: the child killed, nothing queued
    producer._process.kill()
    producer._process.wait()
    producer._reader.join(timeout=30)
    while not producer._queue.empty():
        producer._queue.get_nowait()
    outcome: list[BaseException | None] = []

    def wait() -> None:
        try:
            producer.next_chunk()
        except BaseException as exc:
            outcome.append(exc)
        else:
            outcome.append(None)

    waiting = threading.Thread(target=wait, daemon=True)
    waiting.start()
    waiting.join(timeout=30)
    stuck = waiting.is_alive()
    producer.close()  # frees a stuck waiter (old code) for the next test
    assert not stuck, "next_chunk waited for good on a producer being closed"
    assert isinstance(outcome[0], ChildFailed)
