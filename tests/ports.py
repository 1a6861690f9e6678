"""Ports in tests, without the pick-then-release race: a port found free, released, and bound
later by the server under test can be taken meanwhile by another test's server (the test then
talks to a stranger) or the server fails to bind. So a server under test binds port 0 and says
its port in its banner, and a URL meant to be dead is held bound, not listening."""

from __future__ import annotations

import contextlib
import os
import re
import select
import socket
import time
from collections.abc import Iterator
from pathlib import Path

#: The address a ``purpleflea serve`` banner gives (every role's banner names its health route).
ANNOUNCED = re.compile(r"http://127\.0\.0\.1:(\d+)/v1/health")


def announced_port(output: str) -> int:
    """The port a serve banner in ``output`` names, 0 while no banner was printed."""
    found = ANNOUNCED.search(output)
    return int(found.group(1)) if found else 0


@contextlib.contextmanager
def refused_port() -> Iterator[int]:
    """A loopback port where nothing listens for as long as the block runs: it is held bound
    but not listening, so a connection is refused at once, and no other process (another
    test's server) can take the port meanwhile. A port picked and released before use could be
    taken by one, and the "dead" server would answer."""
    with socket.socket() as sock:  # without SO_REUSEADDR: nothing else binds the port
        sock.bind(("127.0.0.1", 0))
        yield int(sock.getsockname()[1])


@contextlib.contextmanager
def refused_url() -> Iterator[str]:
    """:func:`refused_port` as an HTTP URL."""
    with refused_port() as port:
        yield f"http://127.0.0.1:{port}"


def listening_ports(pid: int) -> set[int]:
    """The TCP ports process ``pid`` listens on (its sockets in /proc/net/tcp, LISTEN state)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        with contextlib.suppress(OSError):  # a descriptor closed meanwhile
            target = os.readlink(fd)
            if target.startswith("socket:["):
                inodes.add(target[len("socket:[") : -1])
    ports = set()
    for table in ("tcp", "tcp6"):
        for line in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and fields[9] in inodes:  # 0A: TCP_LISTEN
                ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


def read_until(stream: object, pattern: str, timeout: float) -> list[str]:
    """Lines from a pipe until one matches ``pattern`` (AssertionError if the time runs out
    or the pipe ends first).

    Reads the file descriptor itself: ``readline`` on the text wrapper would pull several
    lines into its buffer, where ``select`` cannot see them, and wait for more that never come.
    """
    lines: list[str] = []
    pending = b""
    deadline = time.monotonic() + timeout
    fd = stream.fileno()  # type: ignore[attr-defined]
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.2)
        if not ready:
            continue
        chunk = os.read(fd, 65_536)
        if not chunk:
            break
        pending += chunk
        *complete, pending = pending.split(b"\n")
        for raw in complete:
            line = raw.decode(errors="replace")
            lines.append(line)
            if re.search(pattern, line):
                return lines
    raise AssertionError(f"no line matching {pattern!r} within {timeout} s: {lines}")
