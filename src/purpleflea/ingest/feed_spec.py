"""What a connection runner runs: a venue's connection with its URL and normalizer."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from purpleflea.model import VenueLiquidation
from purpleflea.venues.venue import Connection

Normalize = Callable[[bytes | str], list[VenueLiquidation]]
#: Reads a frame for contracts the venue pushed (``Connection.contracts``) and merges them
#: into the exchange's live catalog; True for such a push.
Learn = Callable[[bytes | str], bool]
#: Receives each new (deduplicated, sized) event and the ms time it was received.
Sink = Callable[[VenueLiquidation, int], None]


@dataclass(frozen=True, kw_only=True)
class FeedSpec(Connection):
    """A venue's :class:`~purpleflea.venues.venue.Connection` made runnable: the same
    exchange-specific data (pure, no I/O), with the URL it connects to (tests point it at
    loopback) and its normalizer bound to the live instrument catalog.

    ``subscribe`` and ``keepalive`` may be fixed text or functions called each time they are
    needed: subscriptions are then rebuilt from the catalog on every reconnect.
    """

    normalize: Normalize
    #: ``Connection.contracts`` bound to the exchange's live catalog (see :data:`Learn`);
    #: None: the connection's contracts are not learnt from its frames.
    learn: Learn | None = None

    def subscribe_messages(self) -> tuple[str, ...]:
        return self.subscribe if isinstance(self.subscribe, tuple) else self.subscribe()
