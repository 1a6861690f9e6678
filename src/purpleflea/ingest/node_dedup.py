"""One liquidation, once: a venue node's fills and the position sampler's guesses together.

A node of the venue (Hyperliquid's ``node_fills`` output) sees every liquidation fill; the
position sampler sees only its accounts', from their watched fills (the same fills, the same
event ids, so the tracker's id dedup already keeps one) or from positions that vanished at
their liquidation price between two polls (an event of its own id, seconds to minutes after
the fact). With a node configured, the node's events are published as they come and a sampled
event is held ``hold_ms`` (the node's lag) and dropped when the node told a liquidation of the
same account, instrument (the venue's ``symbol``) and side within ``window_ms`` before its
release (a vanished position is dated at the poll that missed it, up to the sampler's longest
poll interval after the fill). The instrument, not the market: Hyperliquid's ``hyna:BTC`` (a
HIP-3 builder dex's BTC) is ``BTC-PERP`` too, yet another market than the first dex's ``BTC``.
Pure but for the sink: the driver calls :meth:`NodeDedup.release` on its own clock.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

from purpleflea.clock import now_ms
from purpleflea.model import VenueLiquidation

Sink = Callable[[VenueLiquidation, int], None]
_Key = tuple[str, str, str]


def _key(event: VenueLiquidation) -> _Key | None:
    user = event.liquidated_user
    return None if not user else (user.lower(), event.symbol, event.side)


class NodeDedup:
    """Routes the node's and the sampler's liquidations of one venue to ``sink``, each once."""

    def __init__(
        self,
        sink: Sink,
        *,
        hold_ms: int = 60_000,
        window_ms: int = 900_000,
        clock: Callable[[], int] = now_ms,
    ) -> None:
        self.sink = sink
        self.hold_ms = hold_ms
        self.window_ms = window_ms
        self.clock = clock
        self._told: dict[_Key, int] = {}  # key -> when the node last told it (our clock)
        self._held: deque[tuple[int, VenueLiquidation, int]] = deque()
        #: Sampled events dropped because the node told them.
        self.duplicates = 0

    def node(self, event: VenueLiquidation, received_at: int) -> None:
        """A liquidation from the node: published now, remembered for the window."""
        key = _key(event)
        if key is not None:
            self._told[key] = self.clock()
        self.sink(event, received_at)

    def sampled(self, event: VenueLiquidation, received_at: int) -> None:
        """A liquidation the sampler found: held until the node had its chance."""
        if self._told_recently(event):
            self.duplicates += 1
            return
        self._held.append((self.clock() + self.hold_ms, event, received_at))

    def _told_recently(self, event: VenueLiquidation) -> bool:
        key = _key(event)
        told = self._told.get(key) if key is not None else None
        return told is not None and self.clock() - told <= self.window_ms

    def release(self) -> int:
        """Publish the held events whose hold is over and the node did not tell; forget what
        the node told longer than the window ago. Returns how many were published."""
        now = self.clock()
        published = 0
        while self._held and self._held[0][0] <= now:
            _, event, received_at = self._held.popleft()
            if self._told_recently(event):
                self.duplicates += 1
                continue
            self.sink(event, received_at)
            published += 1
        for key in [k for k, told in self._told.items() if now - told > self.window_ms]:
            del self._told[key]
        return published
