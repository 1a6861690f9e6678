"""A harness that kills real `purpleflea` processes at chosen moments and reads what they left.

The chaos tests (``test_chaos_*.py``) start ``purpleflea serve`` (or ``sim``, ``import``) as a
child process, kill it with SIGKILL, SIGTERM or SIGINT at a moment drawn from a seeded
``random.Random``, start it again on the same data folder, and check the durability promises
against the files themselves (the SQLite store, read-only, and the seq mark beside it): every
event a client was sent before the kill is stored once under the seq it was sent with, seqs
never repeat across the restart, and a client resuming from its last seq gets exactly what
it missed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

import purpleflea
from purpleflea.model import Liquidation
from tests.server.test_process import _write_events

T0 = 1_760_000_000_000
SIGNALS = (signal.SIGKILL, signal.SIGTERM, signal.SIGINT)


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll ``condition`` until it holds; AssertionError naming ``what`` at the deadline."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.02)


def write_events(path: Path, prefix: str, count: int, *, spacing_ms: int = 2) -> list[str]:
    """A replay file of ``count`` events (ids ``prefix:n``, $1,000 + n each, in the SPEC test's
    shape); returns the ids in file order."""
    _write_events(path, prefix, [1_000.0 + n for n in range(count)], spacing_ms=spacing_ms)
    return [f"{prefix}:{n}" for n in range(count)]


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "purpleflea.cli", *args]


def make_key(data_dir: Path) -> str:
    result = subprocess.run(
        cli("keys", "--data-dir", str(data_dir), "create", "--account", "chaos"),
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout.splitlines()[0]


@dataclass
class Served:
    """A running ``purpleflea serve`` child and the URL it answers on."""

    process: subprocess.Popen[bytes]
    url: str
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")


@contextmanager
def serve(data_dir: Path, log: Path, *args: str, timeout: float = 60.0) -> Iterator[Served]:
    """``purpleflea serve`` on 127.0.0.1, port 0, until it answers /v1/health; killed (if it
    still runs) on the way out. Its output goes to ``log``."""
    data_dir.mkdir(parents=True, exist_ok=True)
    record = data_dir / "server.json"
    with log.open("ab") as sink:
        process = subprocess.Popen(
            cli(
                "serve",
                "--data-dir",
                str(data_dir),
                "--host",
                "127.0.0.1",
                "--port",
                "0",
                "--heartbeat",
                "0.3",
                *args,
            ),
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    try:
        url = ""

        def answering() -> bool:
            nonlocal url
            if process.poll() is not None:
                raise AssertionError(f"serve exited {process.returncode}: {log.read_text()}")
            try:
                found = json.loads(record.read_text())
            except (FileNotFoundError, ValueError):
                return False
            if found.get("pid") != process.pid:
                return False
            url = found["url"]
            try:
                return httpx.get(f"{url}/v1/ready", timeout=1.0).status_code == 200
            except httpx.HTTPError:
                return False

        wait_until(answering, timeout, f"serve to answer ({log})")
        yield Served(process, url, log)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(30)


def kill(process: subprocess.Popen[bytes], sig: int, timeout: float = 30.0) -> int:
    """Send ``sig`` and wait for the process to end; its return code."""
    process.send_signal(sig)
    return process.wait(timeout)


@dataclass
class Consumer:
    """A stream client on a thread of its own, recording every liquidation it is sent."""

    url: str
    key: str
    since_seq: int = 0
    seen: list[tuple[int, str]] = field(default_factory=list)
    _stop: asyncio.Event | None = None
    _loop: asyncio.AbstractEventLoop | None = None

    async def _run(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        client = purpleflea.LiquidationClient(api_key=self.key, base_url=self.url)
        try:
            async with client.stream(since_seq=self.since_seq, max_backoff=0.2) as stream:
                reading = asyncio.ensure_future(self._read(stream))
                stopping = asyncio.ensure_future(self._stop.wait())
                await asyncio.wait({reading, stopping}, return_when=asyncio.FIRST_COMPLETED)
                for task in (reading, stopping):
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
        finally:
            await client.aclose()

    async def _read(self, stream: object) -> None:
        async for item in stream:  # type: ignore[attr-defined]
            if isinstance(item, Liquidation):
                assert item.seq is not None
                self.seen.append((item.seq, item.id))

    @contextmanager
    def running(self) -> Iterator[Consumer]:
        thread = threading.Thread(target=asyncio.run, args=(self._run(),), daemon=True)
        thread.start()
        try:
            wait_until(lambda: self._stop is not None, 20, "the consumer to start")
            yield self
        finally:
            if self._loop is not None and self._stop is not None:
                with contextlib.suppress(RuntimeError):
                    self._loop.call_soon_threadsafe(self._stop.set)
            thread.join(20)
            assert not thread.is_alive(), "the stream consumer did not stop"


def stored(db: Path) -> list[tuple[int, str]]:
    """(seq, id) of every liquidation in the SQLite store ``db``, by seq (read-only)."""
    connection = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        rows = connection.execute("SELECT seq, id FROM liquidations ORDER BY seq").fetchall()
    finally:
        connection.close()
    return [(int(seq), str(event_id)) for seq, event_id in rows]


def stored_if_made(db: Path) -> list[tuple[int, str]]:
    """:func:`stored`, or nothing when the store (or its table) is not made yet."""
    try:
        return stored(db)
    except sqlite3.OperationalError:
        return []


def stored_alert_seqs(db: Path) -> list[int]:
    connection = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        rows = connection.execute("SELECT seq FROM cascades ORDER BY seq").fetchall()
    finally:
        connection.close()
    return [int(seq) for (seq,) in rows]


def read_mark(db: Path) -> dict[str, object] | None:
    path = db.with_name(db.name + ".seqmark")
    try:
        found: dict[str, object] = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    return found


def describe_signal(sig: int) -> str:
    return signal.Signals(sig).name


def cpu_seconds_of_children() -> float:
    usage = os.times()
    return usage.children_user + usage.children_system
