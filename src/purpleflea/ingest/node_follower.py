"""Follows a venue node's fill output: JSON lines appended to files in a folder.

A Hyperliquid-style node writes one line per block of fills to the newest file under its output
folder (``node_fills/hourly/<date>/<hour>``), starting a new file every hour. The follower reads
the lines appended to the newest file from the moment it starts (older lines are history, not
news), moves to a newer file when one appears (after finishing the old one), and hands each
line's liquidations (``parse``, the venue's) to ``sink``. A line that does not parse is logged
and counted, never fatal.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from purpleflea.clock import now_ms
from purpleflea.model import VenueLiquidation
from purpleflea.venues import FrameError, PartialFrame

log = logging.getLogger("purpleflea.ingest.node_follower")

Sink = Callable[[VenueLiquidation, int], None]
Parse = Callable[[bytes | str], list[VenueLiquidation]]
#: Polls between looks for a newer file (the node starts one an hour).
_RESCAN_EVERY = 10


@dataclass
class FollowerStats:
    lines: int = 0
    bad_lines: int = 0
    events: int = 0
    file: str = ""


def newest_file(root: Path) -> Path | None:
    """The newest regular file under ``root`` (itself when it is a file): the latest written,
    the later path (the node's date/hour names) on a tie."""
    if root.is_file():
        return root
    files = [p for p in root.rglob("*") if p.is_file()]
    if not files:
        return None
    return max(files, key=lambda p: (p.stat().st_mtime, str(p)))


class NodeFollower:
    """Reads new lines of ``root``'s newest file every ``interval`` seconds until cancelled."""

    def __init__(self, root: Path, parse: Parse, sink: Sink, *, interval: float = 0.5) -> None:
        self.root = root
        self.parse = parse
        self.sink = sink
        self.interval = interval
        self.stats = FollowerStats()
        self._file: Path | None = None
        self._offset = 0
        self._partial = b""
        self._polls = 0

    def start_at_end(self) -> None:
        """Skip what is already written (history)."""
        self._file = newest_file(self.root)
        self._offset = self._file.stat().st_size if self._file is not None else 0
        self.stats.file = str(self._file or "")

    def poll(self) -> int:
        """Read what was appended since the last poll (finishing the current file before a
        newer one); returns the events handed to the sink."""
        handed = self._read()
        self._polls += 1
        if self._file is not None and self._polls % _RESCAN_EVERY:
            return handed  # a folder of many hours is not walked on every poll
        newest = newest_file(self.root) if self.root.exists() else None
        if newest is not None and newest != self._file:
            self._file, self._offset, self._partial = newest, 0, b""
            self.stats.file = str(newest)
            handed += self._read()
        return handed

    def _read(self) -> int:
        if self._file is None:
            return 0
        try:
            with self._file.open("rb") as source:
                source.seek(self._offset)
                chunk = source.read()
        except FileNotFoundError:
            return 0
        self._offset += len(chunk)
        *lines, self._partial = (self._partial + chunk).split(b"\n")
        handed = 0
        for line in lines:
            if not line.strip():
                continue
            self.stats.lines += 1
            try:
                events = self.parse(line)
            except PartialFrame as exc:  # a block with some bad fills: keep the others
                self.stats.bad_lines += 1
                log.warning("node fills %s: fills skipped: %s", self._file, exc)
                events = exc.events
            except (FrameError, ValueError) as exc:
                self.stats.bad_lines += 1
                log.warning("node fills %s: bad line skipped: %s", self._file, exc)
                continue
            received = now_ms()
            for event in events:
                self.sink(event, received)
                handed += 1
        self.stats.events += handed
        return handed

    async def run(self) -> None:
        self.start_at_end()
        while True:
            self.poll()  # small local reads; the sink is the event loop's
            await asyncio.sleep(self.interval)
