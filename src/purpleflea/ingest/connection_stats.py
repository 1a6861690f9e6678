"""The counters of one exchange connection, as the health endpoint reads them."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field

#: How many distinct symbols :attr:`ConnectionStats.unsized_symbols` lists: a venue that
#: lists hundreds of new contracts at once cannot grow the health answer without bound.
MAX_UNSIZED_SYMBOLS = 100


@dataclass
class ConnectionStats:
    """Counters of one connection, read by the health endpoint.

    ``frames`` counts every message received (acks and pongs too); ``events`` the events
    handed to the sink; ``malformed`` frames the normalizer rejected, wholly
    (``errors["malformed_frame"]``) or some of their rows (``errors["malformed_rows"]``, the
    other rows' events delivered); ``unsized`` events
    dropped because the instrument's contract size is unknown; ``silent`` connections
    replaced by the data watchdog; ``reconnects`` waits before connecting again;
    ``handovers`` connections replaced before the venue closed them (its notice, its
    schedule: ``ingest/handover.py``);
    ``errors["refused"]`` the exchange's error replies to our requests (a bad topic);
    ``errors["given_up"]`` topics left unsubscribed after their refusal, and ``given_up``
    those of the current session (the rest of a refused batch is subscribed again);
    ``errors["resubscribed"]`` given-up topics asked for again on their timer;
    ``errors["newly_listed"]`` topics the catalog gained while the connection was up (a
    contract listed since it subscribed), asked for on the same socket;
    ``rejected`` the refusals that name a wrong request (the venue's words, each once, kept
    across reconnects), logged as an ERROR; a refusal worth asking again replaces the
    connection (``errors["refused_retry"]``).
    Failed connections are counted by kind in ``errors`` too (``unreachable``, ``timeout``,
    ``http_<status>``, ``closed``, ``invalid_frame``, ``silent``, ``unanswered``:
    docs/live.md).
    ``unsized_symbols`` names what ``unsized`` dropped: events per exchange symbol (the first
    :data:`MAX_UNSIZED_SYMBOLS` symbols; ``unsized`` counts them all), so an operator sees which
    contract the instrument catalog lacks (a coin listed since it was fetched).
    """

    name: str
    exchange: str = ""
    url: str = ""
    state: str = "starting"
    connects: int = 0
    reconnects: int = 0
    frames: int = 0
    events: int = 0
    duplicates: int = 0
    replays: int = 0
    malformed: int = 0
    unsized: int = 0
    silent: int = 0
    handovers: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    given_up: list[str] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)
    unsized_symbols: Counter[str] = field(default_factory=Counter)
    last_error: str = ""
    last_message_at: float | None = None  # time.monotonic()

    def snapshot(self, now: float | None = None) -> dict[str, object]:
        now = time.monotonic() if now is None else now
        age = None if self.last_message_at is None else round(now - self.last_message_at, 3)
        return {
            "name": self.name,
            "exchange": self.exchange,
            "url": self.url,
            "state": self.state,
            "connects": self.connects,
            "reconnects": self.reconnects,
            "frames": self.frames,
            "events": self.events,
            "duplicates": self.duplicates,
            "replays": self.replays,
            "malformed": self.malformed,
            "unsized": self.unsized,
            "silent": self.silent,
            "handovers": self.handovers,
            "errors": dict(self.errors),
            "given_up": list(self.given_up),
            "rejected": list(self.rejected),
            "unsized_symbols": dict(self.unsized_symbols),
            "last_error": self.last_error,
            "last_message_age_s": age,
        }
