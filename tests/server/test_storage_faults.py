"""Issue 16, finding 5: the disk fills during a simulated run.

The store is the real :class:`SQLiteStore`; SQLite's ``max_page_count`` caps the database
file where it stands, so every later write fails inside SQLite exactly as on a full disk
(``database or disk is full``, the transaction rolled back by SQLite itself). Raising the cap
is the space coming back. ``test_a_real_full_tmpfs`` does the same with a real 3 MB tmpfs
where mounting one is possible.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import subprocess
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import httpx
import pytest

from purpleflea.bus.base import Message
from purpleflea.model import CascadeAlert, Liquidation, VenueLiquidation
from purpleflea.server.app import Server
from purpleflea.store.base import Query
from purpleflea.store.sqlite import SQLiteStore
from tests.server.conftest import Running, make_config, running_server

#: Generous for a loaded 2-core CI machine; every wait polls a condition.
TIMEOUT_S = 60.0


async def _until(
    condition: Callable[[], Awaitable[bool]], what: str, *, timeout_s: float = TIMEOUT_S
) -> float:
    """Poll ``condition`` until it holds; returns when (monotonic)."""
    deadline = time.monotonic() + timeout_s
    while not await condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)
    return time.monotonic()


class _Lines(logging.Handler):
    """Every log record of the process, with when it was emitted."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[tuple[float, logging.LogRecord]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append((time.monotonic(), record))

    def lines_between(self, start: float, end: float) -> list[str]:
        """Output lines logged in [start, end] at INFO or above (a traceback counts per line)."""
        lines: list[str] = []
        for at, record in self.records:
            client = record.name.startswith(("httpx", "httpcore"))  # the test's own requests
            if start <= at <= end and record.levelno >= logging.INFO and not client:
                text = record.getMessage()
                if record.exc_info:
                    text += "\n" + logging.Formatter().formatException(record.exc_info)
                lines += text.splitlines()
        return lines


async def _health(running: Running) -> dict[str, object]:
    async with httpx.AsyncClient(base_url=running.url, timeout=10) as http:
        body: dict[str, object] = (await http.get("/v1/health")).json()
        return body


async def _ready_status(running: Running) -> int:
    async with httpx.AsyncClient(base_url=running.url, timeout=10) as http:
        return (await http.get("/v1/ready")).status_code


async def _metrics(running: Running) -> str:
    async with httpx.AsyncClient(base_url=running.url, timeout=10) as http:
        return (await http.get("/v1/metrics")).text


async def _all_stored(store: SQLiteStore) -> tuple[list[Liquidation], list[CascadeAlert]]:
    events: list[Liquidation] = []
    while page := await store.since(events[-1].seq if events else 0, 10_000):
        events += page
    alerts: list[CascadeAlert] = []
    while more := await store.cascades_since(alerts[-1].seq if alerts else 0, 10_000):
        alerts += more
    return events, alerts


async def _check_consistency(server: Server, published: list[Message]) -> None:
    """Seqs gapless; everything published is stored; every alert's events are stored."""
    store = server.store
    assert isinstance(store, SQLiteStore)
    events, alerts = await _all_stored(store)
    seqs = sorted([e.seq for e in events] + [a.seq for a in alerts])
    assert seqs == list(range(1, len(seqs) + 1)), "seqs have a gap (burned by the outage)"
    stored = set(seqs)
    assert all(m.seq in stored for m in published), "a published seq is not in the store"
    # An alert's cascade counts events of its market and side between its start and update:
    # all of them must be stored events (none that the outage dropped).
    by_side: dict[tuple[str, str], list[int]] = {}
    for event in events:
        by_side.setdefault((event.market, event.side), []).append(event.ts)
    for message in published:
        alert = message.payload
        if not isinstance(alert, CascadeAlert):
            continue
        times = by_side.get((alert.market, alert.side), [])
        within = sum(alert.started_at <= ts <= alert.updated_at for ts in times)
        assert within >= alert.events, (
            f"alert {alert.id} (seq {alert.seq}) counts {alert.events} events; "
            f"only {within} are stored"
        )


BURST = "BURST-PERP"


def _cascade(start_ms: int) -> list[VenueLiquidation]:
    """Longs liquidated faster and faster in a falling market: the engine raises a cascade
    (started, then updated) within these 400 events."""
    return [
        VenueLiquidation(
            id=f"burst:{i}",
            exchange="binance_usdm",
            symbol="BURSTUSDT",
            market=BURST,
            side="long",
            price=60_000.0 - 20 * i,
            quantity=50_000.0 * (1 + i // 10) / (60_000.0 - 20 * i),
            size_usd=50_000.0 * (1 + i // 10),
            ts=start_ms + 200 * i,
        )
        for i in range(400)
    ]


async def _fill_and_recover(
    running: Running,
    lines: _Lines,
    *,
    fill: Callable[[], None],
    free: Callable[[], None],
) -> None:
    """Fill the disk mid-run, hold it full, free it; check health, logs and the store."""
    server = running.server
    tracker = server.tracker
    published, collector = _published(server)
    freed = False
    try:

        async def flowing() -> bool:
            return tracker.last_seq >= 50

        await _until(flowing, "the simulator's first 50 events to be stored")
        assert (await _health(running))["status"] == "ok"
        assert await _ready_status(running) == 200
        fill()
        # The first write failure comes after this: measuring from here is the stricter test.
        filled_at = time.monotonic()
        for event in _cascade(tracker.clock_ms):  # alerts about events the outage holds back
            tracker.submit(event)

        async def failed_once() -> bool:
            return tracker.counters["store_write_errors"] >= 1

        # Health says so from the first failed write, not after some retries: asked right
        # after it (counted, not timed: under a loaded CI the seconds between the fill and
        # the first failure are the machine's, 2.7 s at load 10).
        await _until(failed_once, "the first store write to fail", timeout_s=15.0)
        health = await _health(running)
        assert health["status"] == "degraded", health
        reasons = health["reasons"]
        assert isinstance(reasons, list)
        assert any("store" in r for r in reasons), reasons
        assert await _ready_status(running) == 503
        metrics = await _metrics(running)
        assert "purpleflea_store_writable 0" in metrics
        assert "purpleflea_healthy 0" in metrics

        async def held_out() -> bool:
            # The outage goes on, and the simulator too, until the buffer has overflowed and
            # the store has refused several retries (each of them could have logged a line).
            counters = tracker.counters
            return counters["dropped_buffer_full"] > 0 and counters["store_write_errors"] >= 4

        await _until(held_out, "the buffer to overflow while the store refuses retries")
        failing_until = time.monotonic()
        failed_writes = tracker.counters["store_write_errors"]
        received_while_failing = tracker.counters["received"]
        free()
        freed = True

        async def recovered() -> bool:
            return (await _health(running))["status"] == "ok"

        await _until(recovered, "health to say ok after the space came back")
        assert await _ready_status(running) == 200
        assert "purpleflea_store_writable 1" in await _metrics(running)
        # A minute's worth of budget is 10 lines; this outage is shorter, so 10 in total.
        outage_lines = lines.lines_between(filled_at, failing_until)
        assert len(outage_lines) <= 10, outage_lines
        assert len(outage_lines) < failed_writes, (failed_writes, outage_lines)  # not one a write
        assert not [x for x in outage_lines if "cannot rollback" in x]

        async def caught_up() -> bool:
            return tracker.counters["received"] > received_while_failing + 20

        await _until(caught_up, "new events after the recovery")
    finally:
        if not freed:
            # A check above failed with the disk still full: give the space back, or the
            # drain below waits for a store that cannot write, and the timeout hides the
            # failure that matters.
            free()
        source = server.source_task
        if source is not None:
            source.cancel()
        await tracker.drain()
        collector.cancel()
    counters = tracker.counters
    accounted = (
        counters["published"]
        + counters["duplicates"]
        + counters["unsized"]
        + counters["dropped_buffer_full"]
    )
    assert counters["received"] == accounted, dict(counters)
    assert counters["dropped_buffer_full"] > 0, "the small buffer should have overflowed"
    health = await _health(running)
    assert health["pipeline"]["dropped_buffer_full"] == counters["dropped_buffer_full"]  # type: ignore[index]
    await _check_consistency(server, published)
    burst_alerts = [
        m for m in published if isinstance(m.payload, CascadeAlert) and m.payload.market == BURST
    ]
    assert burst_alerts, "the injected cascade should have raised alerts"
    page = await server.store.query(Query(limit=1))
    assert page.events
    assert page.events[0].seq <= tracker.last_seq


@pytest.fixture
def lines() -> Iterator[_Lines]:
    handler = _Lines()
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    yield handler
    root.removeHandler(handler)
    root.setLevel(level)


# The buffer holds the injected burst (400) with room to spare when the outage begins, and
# the simulator (its crash episode at 20x) overflows it while the outage lasts.
_SIM = {"source": "sim", "speed": 20.0, "sim_markets": 40, "ingest_buffer": 2_000}


@pytest.mark.usefixtures("quick_warmup")
async def test_a_full_disk_loses_no_seq_publishes_nothing_unstored_and_logs_little(
    tmp_path: Path, lines: _Lines
) -> None:
    config = make_config(tmp_path, **_SIM)
    async with running_server(config) as running:
        store = running.server.store
        assert isinstance(store, SQLiteStore)
        writer = store._writer

        def fill() -> None:
            pages = writer.execute("PRAGMA page_count").fetchone()[0]
            writer.execute(f"PRAGMA max_page_count = {pages}")

        def free() -> None:
            writer.execute("PRAGMA max_page_count = 1073741823")

        await _fill_and_recover(running, lines, fill=fill, free=free)


def _mount_tmpfs(where: Path, size: str) -> str | None:
    """Mount a tmpfs at ``where``; returns why not when it cannot be done here."""
    if shutil.which("mount") is None:
        return "no mount command"
    if os.geteuid() != 0:
        return "not root"
    where.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
        capture_output=True,
        text=True,
        check=False,
    )
    return None if done.returncode == 0 else done.stderr.strip() or "mount failed"


@pytest.mark.usefixtures("quick_warmup")
async def test_a_real_full_tmpfs(tmp_path: Path, lines: _Lines) -> None:
    disk = tmp_path / "disk"
    # Room for the simulator's crash episode at 20x once the space is back (3 MB, the
    # finding's size, fills again within seconds of the recovery with it).
    why_not = _mount_tmpfs(disk, "64m")
    if why_not is not None:
        pytest.skip(
            f"SKIPPED LOUDLY: cannot mount a 64 MB tmpfs here ({why_not}); the same "
            "fault is covered under the real SQLiteStore by the max_page_count test"
        )
    try:
        config = make_config(disk / "data", **_SIM)
        filler = disk / "filler"

        def fill() -> None:
            fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o644)
            try:  # every byte left, until the disk refuses more
                while os.write(fd, b"\0" * 65_536):
                    pass
            except OSError:
                pass
            finally:
                os.close(fd)

        def free() -> None:
            filler.unlink(missing_ok=True)

        async with running_server(config) as running:
            await _fill_and_recover(running, lines, fill=fill, free=free)
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


def _published(server: Server) -> tuple[list[Message], asyncio.Task[None]]:
    """Every message ``server`` publishes from now on, gathered by the task (cancel it)."""
    published: list[Message] = []
    subscription = server.bus.subscribe(max_bytes=1 << 30)

    async def collect() -> None:
        async for message in subscription:
            published.append(message)

    return published, asyncio.create_task(collect())


def _events(first: int, end: int, start_ms: int) -> list[VenueLiquidation]:
    return [
        VenueLiquidation(
            id=f"gone:{i}",
            exchange="binance_usdm",
            symbol="GONEUSDT",
            market="GONE-PERP",
            side="long",
            price=100.0,
            quantity=10.0,
            size_usd=1_000.0,
            ts=start_ms + 1_000 * i,
        )
        for i in range(first, end)
    ]


async def test_a_removed_data_folder_holds_the_events_says_so_and_names_the_copy(
    tmp_path: Path,
) -> None:
    """SQLite went on writing into the removed file (health ok, events published), all of
    it lost when the process ended; a restart began again at seq 1."""
    folder = tmp_path / "data"
    config = make_config(folder)
    async with running_server(config) as running:
        server = running.server
        published, collector = _published(server)
        start_ms = server.tracker.clock_ms
        await running.push(*_events(0, 5, start_ms))
        shutil.rmtree(folder)
        for event in _events(5, 10, start_ms):
            server.tracker.submit(event)

        async def degraded() -> bool:
            return (await _health(running))["status"] == "degraded"

        await _until(degraded, "health to say degraded", timeout_s=15.0)
        reasons = (await _health(running))["reasons"]
        assert isinstance(reasons, list)
        reason = next(r for r in reasons if "removed or replaced" in r)
        assert await _ready_status(running) == 503
        assert "purpleflea_store_writable 0" in await _metrics(running)
        await asyncio.sleep(0.3)
        collector.cancel()
        assert [m.seq for m in published] == [1, 2, 3, 4, 5], "published, in no file"
        # The operator's way out, as the reason says: copy the open files back, restart.
        copies = [Path(word.strip(",;")) for word in reason.split() if "/fd/" in word]
        assert len(copies) == 2, reason
        folder.mkdir()
        for copy in copies:
            wal = "-wal" if os.readlink(copy).endswith("-wal (deleted)") else ""
            shutil.copyfile(copy, folder / f"purpleflea.sqlite{wal}")
    async with running_server(config) as again:
        await again.push(*_events(10, 12, start_ms))
        store = again.server.store
        assert [event.seq for event in await store.since(0)] == [1, 2, 3, 4, 5, 6, 7]


def _mount_ext4(image: Path, where: Path) -> str | None:
    """A 16 MB ext4 file system at ``where`` that turns read-only on its first error (as a
    disk's does on an I/O error with ``errors=remount-ro``); returns why not when it cannot
    be made here."""
    if os.geteuid() != 0 or shutil.which("mkfs.ext4") is None:
        return "not root, or no mkfs.ext4"
    with image.open("wb") as sparse:
        sparse.truncate(16 << 20)
    made = subprocess.run(
        ["mkfs.ext4", "-q", str(image)], capture_output=True, text=True, check=False
    )
    if made.returncode != 0:
        return made.stderr.strip() or "mkfs.ext4 failed"
    where.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        ["mount", "-o", "loop,errors=remount-ro", str(image), str(where)],
        capture_output=True,
        text=True,
        check=False,
    )
    return None if done.returncode == 0 else done.stderr.strip() or "mount failed"


def _fail_file_system(where: Path) -> None:
    """An ext4 error on the file system mounted at ``where``: the kernel remounts it
    read-only at once, and every write to it fails from then on (EIO, then EROFS)."""
    device = next(
        line.split()[0]
        for line in Path("/proc/mounts").read_text().splitlines()
        if line.split()[1] == str(where)
    )
    Path(f"/sys/fs/ext4/{Path(device).name}/trigger_fs_error").write_text("test\n")


async def test_a_disk_turned_read_only_holds_the_events_and_says_so(tmp_path: Path) -> None:
    disk = tmp_path / "disk"
    why_not = _mount_ext4(tmp_path / "ext4.img", disk)
    if why_not is not None:
        pytest.skip(f"SKIPPED LOUDLY: cannot mount an ext4 loop file system here ({why_not})")
    try:
        async with running_server(make_config(disk / "data")) as running:
            server = running.server
            published, collector = _published(server)
            start_ms = server.tracker.clock_ms
            await running.push(*_events(0, 5, start_ms))
            _fail_file_system(disk)
            for event in _events(5, 10, start_ms):
                server.tracker.submit(event)

            async def degraded() -> bool:
                return (await _health(running))["status"] == "degraded"

            await _until(degraded, "health to say degraded", timeout_s=15.0)
            reasons = (await _health(running))["reasons"]
            assert isinstance(reasons, list)
            assert any("store: events writes failing" in r for r in reasons), reasons
            assert await _ready_status(running) == 503
            assert "purpleflea_store_writable 0" in await _metrics(running)
            await asyncio.sleep(0.3)
            collector.cancel()
            assert [m.seq for m in published] == [1, 2, 3, 4, 5], "published, refused by disk"
            # What was stored is still served: reads work on the read-only disk.
            stored = [event.seq for event in await server.store.since(0)]
            assert stored == [1, 2, 3, 4, 5]
            tracker = server.tracker
        # The stop is not held by the disk; what it held is counted as lost.
        assert tracker.counters["dropped_at_shutdown"] == 5
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)
