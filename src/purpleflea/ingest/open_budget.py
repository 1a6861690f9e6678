"""A venue's cap on new websocket connections a minute from one IP, shared by its feeds.

Hyperliquid allows 30 new connections a minute per IP ("Rate limits and user limits"). A feed's
runner reconnects on its own, with a backoff that starts at half a second: during an outage
each of the position sampler's 11 connections tries about 7 times in its first minute, 77
opens against a cap of 30, and a venue that bans the IP for it ends the outage on our side
only. Every connection the runner opens therefore takes a slot here first, waiting for one
when the minute is spent.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable

from purpleflea.clock import now_ms

#: The cap's window.
MINUTE_MS = 60_000


class OpenBudget:
    """At most ``per_minute`` connections opened in any ``window_ms`` (a minute; ``clock``: ms)."""

    def __init__(
        self, per_minute: int, clock: Callable[[], int] = now_ms, window_ms: int = MINUTE_MS
    ) -> None:
        if per_minute < 1:
            raise ValueError(f"per_minute must be at least 1, got {per_minute}")
        self.per_minute = per_minute
        self.clock = clock
        self.window_ms = window_ms
        self._opened: deque[int] = deque()
        #: Opens that waited for a slot (the minute was spent when they were due).
        self.waited = 0

    def left(self) -> int:
        """Slots free now."""
        self._expire(self.clock())
        return max(0, self.per_minute - len(self._opened))

    def try_take(self) -> bool:
        """Take a slot if one is free now."""
        now = self.clock()
        self._expire(now)
        if len(self._opened) >= self.per_minute:
            return False
        self._opened.append(now)
        return True

    async def take(self) -> None:
        """Take a slot, waiting until the oldest open of the minute ages out if need be."""
        waited = False
        while not self.try_take():
            waited = True
            wait_ms = self._opened[0] + self.window_ms - self.clock()
            await asyncio.sleep(max(wait_ms, 50) / 1_000)
        if waited:
            self.waited += 1

    def _expire(self, now: int) -> None:
        opened = self._opened
        while opened and opened[0] <= now - self.window_ms:
            opened.popleft()
