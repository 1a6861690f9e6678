"""The fan-out interface: publish a message once, every subscriber gets it or is told why not.

A :class:`Message` carries the decoded object (for server-side filtering) and its JSON bytes
(encoded once, written to many sockets). Subscribers have bounded buffers, measured in bytes
of those frames (what the client still has to receive, whether the frames are small events
or large alerts): one that falls behind is closed with a reason instead of slowing the
publisher or its peers.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Protocol

import msgspec

from purpleflea.model import CascadeAlert, Liquidation, encode

#: A subscriber's buffer when none is given: bytes of frames waiting to be read.
DEFAULT_BUFFER_BYTES = 4 * 1024 * 1024


class Message(msgspec.Struct, frozen=True):
    """One published item: ``channel`` is ``liquidations`` or ``cascades``.

    A frozen struct, not a frozen dataclass: one is built per event published, and a frozen
    dataclass's ``__init__`` (an ``object.__setattr__`` per field) took 1.5 µs of it, the
    struct 0.2 µs (bench/crash_ingest.py).
    """

    channel: str
    seq: int
    payload: Liquidation | object
    data: bytes
    #: ``time.monotonic()`` when the publishing process sent it (0: not known, e.g. from
    #: another node, whose clock is not this one's): the stage latency's ``written`` start.
    published: float = 0.0


def liquidation_frame(event: Liquidation) -> bytes:
    """The stream's wire frame of one event (encoded once, sent to every client)."""
    return b'{"type":"liquidation","data":' + encode(event) + b"}"


def cascade_frame(alert: CascadeAlert) -> bytes:
    """The stream's wire frame of one cascade alert."""
    return b'{"type":"cascade","data":' + encode(alert) + b"}"


class SubscriptionClosed(Exception):
    """The subscription ended; ``reason`` says why (slow consumer, shutdown)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Subscription(Protocol):
    #: Why the subscription ended (None while it is open).
    closed_reason: str | None

    def __aiter__(self) -> AsyncIterator[Message]: ...

    async def next(self) -> Message:
        """The next message; raises :class:`SubscriptionClosed` when the subscription ended."""
        ...

    def drain(self, limit: int | None = None) -> list[Message]:
        """What is buffered now (at most ``limit``), without waiting."""
        ...

    def close(self, reason: str = "closed") -> None: ...

    async def wait_closed(self) -> str:
        """Wait until the subscription ends; returns why (for a writer blocked elsewhere)."""
        ...


class Bus(Protocol):
    async def publish(self, message: Message) -> None: ...

    async def publish_many(self, messages: Sequence[Message]) -> None:
        """Publish ``messages`` in order, faster than one :meth:`publish` each where the bus
        can (a backlog read back from the store); raises if not all of them went out."""
        ...

    @property
    def connected(self) -> bool:
        """Whether messages get through now (health reads it; in-process: always)."""
        ...

    async def newest_seq(self) -> int | None:
        """The seq of the newest message the bus holds, published by this run or an earlier
        one (a durable bus: where a restarted publisher resumes publishing); None when it
        holds none or keeps nothing across runs (in-process)."""
        ...

    def subscribe(self, max_bytes: int = DEFAULT_BUFFER_BYTES) -> Subscription:
        """A new subscriber, closed as a slow consumer once more than ``max_bytes`` of
        frames wait for it."""
        ...

    async def close(self) -> None: ...
