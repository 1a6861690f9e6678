"""The server as a process: the SPEC's example program verbatim, and resume across kill -9."""

from __future__ import annotations

import asyncio
import http.server
import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import httpx

import purpleflea
from purpleflea.model import Liquidation
from tests.conftest import shared_dir
from tests.ports import ANNOUNCED, announced_port, listening_ports, read_until

T0 = 1_760_000_000_000


def _write_events(path: Path, prefix: str, sizes: list[float], *, spacing_ms: int = 20) -> None:
    with path.open("w") as out:
        for n, size in enumerate(sizes):
            price = 60_000.0 + n
            event = {
                "id": f"{prefix}:{n}",
                "exchange": "binance_usdm" if n % 2 else "bybit",
                "symbol": "BTCUSDT",
                "market": "BTC-PERP" if n % 3 else "ETH-PERP",
                "side": "long" if n % 4 else "short",
                "price": price,
                "quantity": size / price,
                "size_usd": size,
                "ts": T0 + n * spacing_ms,
            }
            out.write(json.dumps(event) + "\n")


@dataclass
class Served:
    """A ``purpleflea serve`` process and the port it bound (``--port 0``), from its banner."""

    process: subprocess.Popen[str]
    port: int
    #: Its output up to the banner's line naming the port (the rest stays in its stdout).
    startup: list[str]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@contextmanager
def _serve(data_dir: Path, *args: str) -> Iterator[Served]:
    """The server on a port of its choosing, once it answers (it prints its banner then): a
    port picked here and released could be bound by another test's server first, and that
    one would have answered for it (tests/ports.py)."""
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "purpleflea.cli",
            "serve",
            "--data-dir",
            str(data_dir),
            "--port",
            "0",
            "--heartbeat",
            "0.5",
            *args,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        try:
            startup = read_until(process.stdout, ANNOUNCED.pattern, timeout=60)
        except AssertionError as exc:
            process.kill()
            raise AssertionError(f"server did not start: {exc} {process.communicate()[0]}") from exc
        yield Served(process, announced_port(startup[-1]), startup)
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()


def _key(data_dir: Path) -> str:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "purpleflea.cli",
            "keys",
            "--data-dir",
            str(data_dir),
            "create",
            "--account",
            "tests",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout.splitlines()[0]


def _read_lines(pipe: IO[str], into: queue.Queue[str]) -> None:
    """Puts each line of ``pipe`` on ``into``, then "" at its end."""
    for line in pipe:
        into.put(line)
    into.put("")


def _spec_example() -> str:
    spec = (shared_dir() / "SPEC.md").read_text()
    section = spec.split("## The SDK contract", 1)[1]
    return section.split("```python\n", 1)[1].split("```", 1)[0]


def test_the_spec_example_runs_verbatim_and_prints_big_liquidations(tmp_path: Path) -> None:
    program = _spec_example()
    assert 'purpleflea.LiquidationClient(api_key="YOUR_KEY")' in program
    (tmp_path / "example.py").write_text(program)
    # A minute of events, 100 ms apart: the example streams from the moment it connects, and
    # under load its start (an interpreter, the SDK's import, the key) took longer than the
    # 2.4 s a shorter replay lasted, so it saw nothing and waited for ever.
    sizes = [5_000.0, 2_500_000.0, 40_000.0, 150_000.0, 99_999.0, 1_250_000.0] * 100
    _write_events(tmp_path / "events.jsonl", "spec", sizes, spacing_ms=100)
    with _serve(
        tmp_path / "data",
        "--source",
        "replay",
        "--replay",
        str(tmp_path / "events.jsonl"),
        "--speed",
        "1",
    ) as served:
        env = dict(
            os.environ,
            PURPLEFLEA_URL=served.url,
            PURPLEFLEA_API_KEY=_key(tmp_path / "data"),
        )
        example = subprocess.Popen(
            [sys.executable, str(tmp_path / "example.py")],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        lines: list[str] = []
        read: queue.Queue[str] = queue.Queue()
        assert example.stdout is not None
        # A thread reads the pipe so the deadline holds even when the example prints nothing
        # (a blocking readline here once outlived the deadline until pytest's 300 s timeout).
        threading.Thread(target=_read_lines, args=(example.stdout, read), daemon=True).start()
        try:
            deadline = time.monotonic() + 60
            while sum(x.startswith("LIQUIDATION") for x in lines) < 6:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                try:
                    line = read.get(timeout=left)
                except queue.Empty:
                    break
                if not line:
                    break
                lines.append(line.rstrip("\n"))
        finally:
            example.kill()
            _, err = example.communicate()
        # `serve` froze its startup heap once it answered (server/heap.py).
        metrics = httpx.get(f"{served.url}/v1/metrics", timeout=10).text
        frozen = re.search(r"^purpleflea_gc_frozen_objects (\S+)$", metrics, re.MULTILINE)
        assert frozen is not None, metrics
        assert float(frozen.group(1)) > 10_000
    heads = [x for x in lines if x.startswith("LIQUIDATION")]
    assert len(heads) >= 6, (lines, err)
    for head in heads:
        match = re.fullmatch(r"LIQUIDATION: (long|short) ([\d,]+) ([A-Z]+-PERP)", head)
        assert match, head
        assert int(match.group(2).replace(",", "")) > 100_000
    prices = [x for x in lines if x.startswith(" Price:")]
    assert prices
    assert all(re.fullmatch(r" Price: \$[\d,]+\.\d\d \| Cascade risk: \d+/10", p) for p in prices)


def test_resume_across_kill_9_and_restart_loses_nothing_a_client_saw(tmp_path: Path) -> None:
    data = tmp_path / "data"
    _write_events(tmp_path / "first.jsonl", "first", [1_000.0 + n for n in range(300)])
    _write_events(tmp_path / "second.jsonl", "second", [2_000.0 + n for n in range(100)])
    key = _key(data)
    seen: list[Liquidation] = []

    async def consume(url: str, until: int) -> None:
        client = purpleflea.LiquidationClient(api_key=key, base_url=url)
        async with client.stream(since_seq=seen[-1].seq if seen else 0, max_backoff=0.3) as stream:
            async for item in stream:
                assert isinstance(item, Liquidation)
                seen.append(item)
                if len(seen) >= until:
                    return

    with _serve(
        data, "--source", "replay", "--replay", str(tmp_path / "first.jsonl"), "--speed", "2"
    ) as first:
        asyncio.run(consume(first.url, 40))
        first.process.send_signal(signal.SIGKILL)  # mid-stream: the replay is still running
        first.process.wait(10)
    saw_before = {e.seq: e.id for e in seen}
    # Restarted on a port of its own: the client resumes from its seq wherever the server is.
    with _serve(
        data,
        "--source",
        "replay",
        "--replay",
        str(tmp_path / "second.jsonl"),
        "--speed",
        "50",
    ) as second:
        history = []
        headers = {"X-API-Key": key}
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            page = httpx.get(
                f"{second.url}/v1/liquidations", params={"limit": 1000}, headers=headers
            )
            history = page.json()["events"]
            if sum(e["id"].startswith("second") for e in history) == 100:
                break
            time.sleep(0.2)
        stored = {e["seq"]: e["id"] for e in history}
        # Everything the client saw before the kill is still there, under the same seq.
        assert all(stored.get(seq) == event_id for seq, event_id in saw_before.items())
        # The client resumes from its last seq: every later stored event, once, in order.
        asyncio.run(consume(second.url, len(stored)))
    seqs = [e.seq for e in seen]
    assert seqs == sorted(stored)
    assert len(set(seqs)) == len(seqs)
    first_run = [s for s, i in stored.items() if i.startswith("first")]
    second_run = [s for s, i in stored.items() if i.startswith("second")]
    assert max(first_run) < min(second_run)


class _Stranger(http.server.BaseHTTPRequestHandler):
    """Another test's server: answers any GET with 200 and ``{}``."""

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args: object) -> None:
        pass


def test_a_port_taken_before_the_server_binds_is_not_mistaken_for_the_server(
    tmp_path: Path,
) -> None:
    # The harness picked a free port, released it and passed it to the server: another
    # test's server could bind it first. The server then failed ("port ... is in use") while
    # the other one answered the health check, and the test talked to a stranger.
    stranger = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Stranger)
    threading.Thread(target=stranger.serve_forever, daemon=True).start()
    try:
        with _serve(tmp_path / "data", "--source", "none") as served:
            assert served.port != stranger.server_address[1]
            assert served.port in listening_ports(served.process.pid)
            health = httpx.get(f"{served.url}/v1/health", timeout=10).json()
            assert "last_seq" in health  # the tracker's health, not the stranger's "{}"
    finally:
        stranger.shutdown()
        stranger.server_close()
