"""One answer computed for many requests, within a CPU budget: ``/v1/metrics`` for anyone.

The metrics page is public (Prometheus, load balancers) and is computed from the whole
server's state on the event loop. One anonymous client asking back to back took ~0.7 of a core
(bench/results/attack.md, third round). :class:`BudgetedRender` spends at most a share of a
core on such renders on average (a burst beyond it at first); a request that comes while the
budget is spent waits for the next render and shares it with every request waiting then.

No answer is stale: each one is rendered after its request arrived, so a read after an action
sees the action (what tests, and operators checking a fix, rely on). What a flood costs the
others is latency: a wait of up to one render's CPU divided by the share (~10 ms / 0.1 =
0.1 s), whoever floods and from however many addresses.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Generic, TypeVar

from purpleflea.server.ratelimit import RateLimiter

T = TypeVar("T")

#: The budget's one bucket (a :class:`RateLimiter` counts per name; renders have one).
_BUCKET = "render"


class BudgetedRender(Generic[T]):
    """``render()`` for whoever awaits :meth:`get`, spending on average at most ``share`` of a
    core on it (``burst_s`` CPU seconds at once): beyond that, callers wait for one shared
    render. Every result was computed after its caller asked.

    CPU is read on the calling thread's clock (``cpu``, :func:`time.thread_time`): ``render``
    runs on the event loop's thread and does not await.
    """

    def __init__(
        self,
        render: Callable[[], T],
        *,
        share: float,
        burst_s: float,
        clock: Callable[[], float] = time.monotonic,
        cpu: Callable[[], float] = time.thread_time,
    ) -> None:
        if not 0 < share <= 1 or burst_s <= 0:
            raise ValueError(f"share must be in (0, 1] and burst_s > 0 (got {share}, {burst_s})")
        self._render = render
        self._cpu = cpu
        #: The budget as given: its share of a core on average, its CPU seconds at once.
        self.share = share
        self.burst_s = burst_s
        # Counted in milliseconds of CPU: the limiter lets a request through at one token.
        self._budget = RateLimiter(share * 1000, max(1.0, burst_s * 1000), clock=clock)
        self._next: asyncio.Future[T] | None = None
        #: Renders done, and answers that waited for a render shared with others.
        self.renders = 0
        self.shared = 0

    async def get(self) -> T:
        """A result rendered after this call began."""
        if self._next is not None and self._next.cancelled():  # the loop is shutting down
            self._next = None
        if self._next is None and self._budget.acquire(_BUCKET) == 0:
            return self._render_now()
        self.shared += 1
        if self._next is None:
            self._next = asyncio.ensure_future(self._render_later())
        # Shielded: a caller that goes away (a closed connection) leaves the others' render.
        return await asyncio.shield(self._next)

    async def _render_later(self) -> T:
        await self._budget.take(_BUCKET)
        # Whoever asks from now on needs a later render; nothing runs between this and the
        # render (it does not await), so everyone who joined this one asked before it began.
        self._next = None
        return self._render_now()

    def _render_now(self) -> T:
        started = self._cpu()
        try:
            return self._render()
        finally:
            self.renders += 1
            # The token acquire took was 1 ms: charge the rest of what the render cost.
            self._budget.charge(_BUCKET, (self._cpu() - started) * 1000 - 1)
