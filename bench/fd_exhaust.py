"""Many client addresses against the server's file descriptors (RLIMIT_NOFILE).

    nice -n 10 .venv/bin/python bench/fd_exhaust.py --nofile 256 [--max-connections 0]

Starts ``purpleflea serve --source sim`` on a loopback port of its choosing (``--port 0``) with
its open-files limit lowered to ``--nofile`` (so that a few hundred connections reach it),
opens a keep-alive "victim" connection from 127.0.0.1, then opens connections from 127.0.1.1,
127.0.1.2, ... (``--per-address`` each, far under the per-address cap), each sending ``GET
/v1/health`` and kept alive by asking again every 2 s (uvicorn closes a keep-alive connection
idle for 5 s). Reported: what the attacker's connections got (200, the 503 refusal, or no
answer: the server could not accept); what a fresh connection from 127.0.0.1 gets while they
are held; whether ingest went on (``last_seq`` and the store's state, read on the victim's
connection); the server's descriptors in use (``/proc/PID/fd``); the lines its log wrote naming
"Too many open files"; whether it serves again once the attacker lets go. ``--max-connections
0`` turns the process-wide cap off (what the server did before it existed)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from serving import until_serving

_REQUEST = b"GET /v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"


async def ask(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, timeout: float
) -> tuple[str, bytes]:
    """One request on a keep-alive connection: ``(status, body)``; status ``"no answer"``
    when nothing comes within ``timeout``, ``"closed"`` when the server hung up."""
    try:
        writer.write(_REQUEST)
        status = await asyncio.wait_for(reader.readline(), timeout)
        if not status:
            return "closed", b""
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout)
        length = next(
            int(line.split(b":")[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length")
        )
        body = await asyncio.wait_for(reader.readexactly(length), timeout)
        return status.split()[1].decode(), body
    except TimeoutError:
        return "no answer", b""
    except (ConnectionError, asyncio.IncompleteReadError):
        return "closed", b""


async def connect(
    port: int, source: str, timeout: float
) -> tuple[str, bytes, tuple[asyncio.StreamReader, asyncio.StreamWriter] | None]:
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0)), timeout
        )
    except (TimeoutError, OSError) as exc:
        return f"connect failed ({type(exc).__name__})", b"", None
    status, body = await ask(reader, writer, timeout)
    if status != "200":
        writer.close()
        return status, body, None
    return status, body, (reader, writer)


def descriptors(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def code_of(body: bytes) -> str:
    with contextlib.suppress(ValueError, KeyError, TypeError):
        return str(json.loads(body)["error"]["code"])
    return ""


async def attack(args: argparse.Namespace, port: int, pid: int) -> None:
    victim = await connect(port, "127.0.0.1", 10)
    assert victim[2] is not None, victim[:2]
    held: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
    busy = asyncio.Lock()  # the victim's connection: one request at a time

    async def keep_alive() -> None:
        """Ask on every held connection every 2 s (uvicorn closes one idle for 5 s); drop
        those the server closed."""
        while True:
            await asyncio.sleep(2)
            conns = list(held)
            answers = await asyncio.gather(*(ask(*conn, 3) for conn in conns))
            for conn, (status, _) in zip(conns, answers, strict=True):
                if status != "200" and conn in held:
                    held.remove(conn)
            async with busy:
                await ask(*victim[2], 5)

    pinger = asyncio.create_task(keep_alive())
    outcomes: dict[str, int] = {}
    addresses = 0
    quiet_round = 0
    while len(held) < args.attempts and quiet_round < 2:
        addresses += 1
        source = f"127.0.{1 + addresses // 250}.{1 + addresses % 250}"
        got = 0
        for _ in range(args.per_address):
            status, body, conn = await connect(port, source, 2)
            key = status + (f" {code_of(body)}" if code_of(body) else "")
            outcomes[key] = outcomes.get(key, 0) + 1
            if conn is not None:
                held.append(conn)
                got += 1
        quiet_round = quiet_round + 1 if got == 0 else 0
    print(
        f"attacker: {addresses} addresses, {len(held)} connections held; answers {outcomes}; "
        f"server descriptors {descriptors(pid)}"
    )
    try:
        async with busy:
            status, body = await ask(*victim[2], 5)
        first = json.loads(body) if status == "200" else {}
        print(f"victim's keep-alive health at the peak: {status} {body[:200]!r}")
        started = time.monotonic()
        fresh: dict[str, int] = {}
        while time.monotonic() - started < args.hold:
            status, body, conn = await connect(port, "127.0.0.1", 3)
            key = status + (f" {code_of(body)}" if code_of(body) else "")
            fresh[key] = fresh.get(key, 0) + 1
            if conn is not None:
                conn[1].close()
            await asyncio.sleep(1)
        async with busy:
            status, body = await ask(*victim[2], 5)
        last = json.loads(body) if status == "200" else {}
        print(
            f"during {args.hold:.0f} s held: a fresh 127.0.0.1 connection got {fresh}; "
            f"victim's keep-alive health {status}: last_seq {first.get('last_seq')} -> "
            f"{last.get('last_seq')}, store {last.get('store')}, "
            f"status {last.get('status')} {last.get('reasons')}; server descriptors "
            f"{descriptors(pid)}; attacker still holds {len(held)}"
        )
    finally:
        pinger.cancel()
        for _, writer in held:
            writer.close()
    await asyncio.sleep(2)
    status, body, conn = await connect(port, "127.0.0.1", 5)
    after = json.loads(body) if status == "200" else {}
    print(
        f"after the attacker let go: a fresh connection got {status}, last_seq "
        f"{after.get('last_seq')}, status {after.get('status')} {after.get('reasons')}"
    )
    if conn is not None:
        conn[1].close()
    victim[2][1].close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nofile", type=int, default=256, help="the server's RLIMIT_NOFILE")
    parser.add_argument("--per-address", type=int, default=4)
    parser.add_argument("--attempts", type=int, default=2000, help="connections at most")
    parser.add_argument("--hold", type=float, default=20.0, help="seconds to hold them")
    parser.add_argument("--max-connections", type=int, default=None)
    parser.add_argument("--log", type=int, default=0, help="print this many last log bytes")
    args = parser.parse_args()

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (args.nofile, args.nofile))

    with tempfile.TemporaryDirectory(prefix="pf-fd-") as data:
        command = [str(Path(sys.executable).with_name("purpleflea")), "serve", "--source", "sim"]
        command += ["--markets", "10", "--data-dir", data, "--port", "0"]
        if args.max_connections is not None:
            command += ["--max-connections", str(args.max_connections)]
        log = Path(data) / "server.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(command, stdout=out, stderr=out, preexec_fn=limit)  # noqa: PLW1509
            try:
                port = asyncio.run(until_serving(log, timeout_s=90, process=proc))
                print(
                    f"server RLIMIT_NOFILE {args.nofile}, descriptors at rest "
                    f"{descriptors(proc.pid)}, load average {os.getloadavg()}"
                )
                asyncio.run(attack(args, port, proc.pid))
            finally:
                proc.terminate()
                proc.wait(10)
        text = log.read_text(errors="replace")
        emfile = [line for line in text.splitlines() if "Too many open files" in line]
        print(f"server log: {len(emfile)} lines naming 'Too many open files'")
        for line in dict.fromkeys(line[:200] for line in emfile):
            print(f"  {line}")
        if args.log:
            print(text[-args.log :])


if __name__ == "__main__":
    main()
