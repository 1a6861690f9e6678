"""`purpleflea serve` killed while it delivers a webhook, at moments drawn from a fixed seed.

docs/webhooks.md: delivery is at least once. After a crash (SIGKILL) the next start sends
again from the last saved progress; a graceful stop (SIGTERM, SIGINT) writes what is still
queued to the dead letters. So once the restarted server has caught up, every stored
liquidation the webhook matches has been delivered or is in its dead letters; repeats are
allowed (same ``X-Purpleflea-Event-Id``), a delivery of a seq the store does not hold is not.
"""

from __future__ import annotations

import random
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx

from tests.reliability.chaos import (
    SIGNALS,
    describe_signal,
    kill,
    make_key,
    serve,
    stored,
    wait_until,
    write_events,
)

SEED = 7_12_2026
EVENTS = 600
SERVE_FLAGS = (
    "--webhook-private-targets",
    "allow",
    "--webhook-destination-rate",
    "0",
    "--webhook-destination-bytes",
    "0",
    "--webhook-backoff",
    "0.2",
)


class Receiver:
    """A loopback webhook receiver answering 200 to each POST, recording its event id."""

    def __init__(self) -> None:
        self.delivered: list[int] = []
        self.lock = threading.Lock()

    @contextmanager
    def running(self) -> Iterator[str]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                self.rfile.read(length)
                with receiver.lock:
                    receiver.delivered.append(int(self.headers["X-Purpleflea-Event-Id"]))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield f"http://127.0.0.1:{server.server_address[1]}/hook"
        finally:
            server.shutdown()
            server.server_close()

    def seqs(self) -> set[int]:
        with self.lock:
            return set(self.delivered)


def _dead_letters(url: str, key: str, hook: str) -> set[int]:
    found = httpx.get(
        f"{url}/v1/webhooks/{hook}/dead-letters",
        params={"limit": 1000},
        headers={"X-API-Key": key},
        timeout=10,
    ).json()
    assert found["dropped"] == 0, found
    return {int(letter["event_id"]) for letter in found["dead_letters"]}


def _one_kill(tmp_path: Path, rng: random.Random, sig: int, trial: int) -> str:
    data = tmp_path / f"data{trial}"
    db = data / "purpleflea.sqlite"
    first_file = tmp_path / f"first{trial}.jsonl"
    second_file = tmp_path / f"second{trial}.jsonl"
    write_events(first_file, f"a{trial}", EVENTS, spacing_ms=5)
    write_events(second_file, f"b{trial}", 50, spacing_ms=5)
    key = make_key(data)
    log = tmp_path / f"serve{trial}.log"
    receiver = Receiver()
    kill_after = rng.randint(1, EVENTS * 3 // 4)
    with receiver.running() as target:
        # The webhook exists before the first event: every stored event is one it matches.
        with serve(data, log, "--source", "none", *SERVE_FLAGS) as before:
            made = httpx.post(
                f"{before.url}/v1/webhooks",
                json={"url": target, "channels": ["liquidations"]},
                headers={"X-API-Key": key},
                timeout=10,
            )
            assert made.status_code in (200, 201), made.text
            hook = made.json()["id"]
            kill(before.process, signal.SIGTERM)
        replay = ("--source", "replay", "--speed", "1", *SERVE_FLAGS)
        with serve(data, log, *replay, "--replay", str(first_file)) as first:
            wait_until(lambda: len(receiver.seqs()) >= kill_after, 60, f"{kill_after} deliveries")
            code = kill(first.process, sig)
        what = f"trial {trial}: {describe_signal(sig)} after {kill_after} deliveries (exit {code})"
        with serve(data, log, *replay, "--replay", str(second_file)) as second:
            wait_until(
                lambda: sum(i.startswith("b") for _, i in stored(db)) == 50, 60, f"{what}: stored"
            )
            seqs = {seq for seq, _ in stored(db)}

            def settled() -> bool:
                return seqs <= receiver.seqs() | _dead_letters(second.url, key, hook)

            wait_until(settled, 60, f"{what}: every stored event delivered or dead-lettered")
            dead = _dead_letters(second.url, key, hook)
    got = receiver.seqs()
    assert got <= seqs, (what, sorted(got - seqs)[:10])
    assert seqs <= got | dead, (what, sorted(seqs - got - dead)[:10])
    if sig == signal.SIGKILL:
        assert not dead, (what, "a crash writes no dead letters", sorted(dead)[:10])
    return what


def test_a_webhook_misses_nothing_when_its_server_is_killed_mid_delivery(tmp_path: Path) -> None:
    rng = random.Random(SEED)
    done = [_one_kill(tmp_path, rng, sig, trial) for trial, sig in enumerate(SIGNALS)]
    assert len(done) == 3
