"""Handing a feed over to a new connection before the venue closes the old one.

Venues close healthy connections on notice or on a schedule: OKX sends ``{"event":"notice",
"code":"64008",..}`` 30 s before a service upgrade closes the socket (OKX WebSocket docs,
"Notifications"), Binance closes every market-stream connection at 24 h ("expect to be
disconnected at the 24 hour mark", its websocket-market-streams pages). Reconnecting after
the close loses whatever happens between the close and the new subscription. The runner
(``ingest/connection.py``) instead opens the replacement while the old connection still
delivers; once the replacement has answered, the old one serves :data:`OVERLAP` seconds more
and is closed by us. An event seen on both is published once (the feed's one deduper).
"""

from __future__ import annotations

import asyncio

#: Seconds an old connection keeps delivering after its replacement answered: long enough for
#: the replacement's subscriptions to take (their acks precede data), short of OKX's 30 s.
OVERLAP = 2.0


class Link:
    """One connection of a feed, as the handover sees it.

    Its session asks for a replacement (:meth:`replace`: the venue's notice, or the lifetime
    ending); the replacement, once the venue answers it, retires its predecessor
    (:meth:`retire`). A connection retired this way is no longer the feed: its end is not a
    failure and opens no gap.
    """

    def __init__(self, predecessor: Link | None = None) -> None:
        #: The connection this one replaces, until this one is answered.
        self.predecessor = predecessor
        #: Set when this connection asks for its replacement; ``reason`` says why.
        self.replacing = asyncio.Event()
        self.reason = ""
        #: Set when its replacement is up: it may close after :data:`OVERLAP`.
        self.retired = asyncio.Event()
        #: Its connection attempt is over (it failed or closed).
        self.ended = False
        #: When its data watchdog last saw data (monotonic), or started waiting for it: a
        #: replacement's data clock carries on from it, so a feed whose every connection is
        #: replaced before its data timeout is still cut as silent.
        self.last_data: float | None = None

    def replace(self, reason: str) -> None:
        """Ask for a replacement (once: later reasons are ignored)."""
        if not self.replacing.is_set():
            self.reason = reason
            self.replacing.set()

    def retire(self) -> None:
        self.retired.set()

    @property
    def handed_over(self) -> bool:
        """Its replacement is up: this connection's end costs nothing."""
        return self.retired.is_set()

    def answered(self) -> None:
        """This connection received the venue's first answer: its predecessor may go."""
        if self.predecessor is not None:
            self.predecessor.retire()
            self.predecessor = None

    async def retirement(self) -> None:
        """Return :data:`OVERLAP` seconds after this connection was retired (then close it)."""
        await self.retired.wait()
        await asyncio.sleep(OVERLAP)
