"""Keeping the good topics of a subscribe message the venue refused whole.

Bybit refuses a whole subscribe message when one of its topics is bad (a delisted or
not-yet-live symbol still in the catalog) and subscribes none of the others; its reply names
the first bad topic (``error:handler not found,topic:..``). Kraken Futures answers a bad
product id with ``{"event":"error","message":"Invalid product id"}``, naming none. One bad
symbol would then cost every market of its batch (200 on Bybit, all of Kraken's) until the
catalog changes. This is the pure part (no socket): told what was sent and each answer, it
decides what to send again and which topics to give up; the runner sends and counts.

A refusal that names a topic of the refused batch: the rest is subscribed again without it.
One that names none: the batch is split in halves, each subscribed again, until the bad
topic is alone and given up. Every message sent again answers a refusal (never a timer), and
a session sends at most :data:`MAX_RESUBSCRIBES`: then the refused topics are given up, so a
venue refusing everything cannot turn this into a loop.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from purpleflea.venues.venue import Batching

#: Subscribe messages one session may send again. One bad topic among 300 takes about 18
#: (two a halving); a cap of 64 leaves room for a few bad topics and ends the worst case.
MAX_RESUBSCRIBES = 64


@dataclass(frozen=True)
class Step:
    """What to do about one refused batch: ``send`` these messages now; ``given_up``: topics
    no longer asked for on this connection; ``refused``: the topics the refusal cost."""

    send: tuple[str, ...]
    given_up: tuple[str, ...]
    refused: tuple[str, ...]


class Resubscriber:
    """Tags each batched subscribe of one session, remembers its topics until answered, and
    turns a refusal into a :class:`Step`."""

    def __init__(self, batching: Batching, limit: int = MAX_RESUBSCRIBES) -> None:
        self._batching = batching
        self._pending: dict[str, tuple[str, ...]] = {}  # tag -> topics, in the order sent
        self._next_tag = 1
        #: Messages this session may still send again.
        self.left = limit

    def start(self, messages: Iterable[str]) -> list[str]:
        """``messages`` as they go out: each batch rebuilt with its tag and remembered."""
        out = []
        for message in messages:
            topics = self._batching.topics(message)
            out.append(message if topics is None else self._tagged(topics))
        return out

    def answer(self, frame: bytes | str) -> Step | None:
        """What to do about ``frame``: a :class:`Step` if it refuses a batch we sent."""
        reply = self._batching.reply(frame)
        if reply is None:
            return None
        if reply.tag is not None:
            tag = reply.tag if reply.tag in self._pending else None
        else:
            # No echoed id: the batch holding the topic named (Kraken acks each batch with
            # its products), else the oldest: the venue answers in the order of requests.
            holding = (t for t, topics in self._pending.items() if reply.topic in topics)
            tag = next(holding, None) or next(iter(self._pending), None)
        if tag is None:
            return None  # an answer to nothing we are waiting for
        topics = self._pending.pop(tag)
        return self._split(topics, reply.topic, reply.live) if reply.refused else None

    def _split(self, topics: tuple[str, ...], named: str | None, live: bool) -> Step:
        given_up: tuple[str, ...] = ()
        if named in topics:
            given_up = (named,) if named is not None and not live else ()
            parts = [tuple(t for t in topics if t != named)]
        elif len(topics) == 1:
            given_up, parts = topics, []
        else:
            half = len(topics) // 2
            parts = [topics[:half], topics[half:]]
        parts = [part for part in parts if part]
        if len(parts) > self.left:
            given_up += tuple(topic for part in parts for topic in part)
            parts = []
        self.left -= len(parts)
        return Step(tuple(self._tagged(part) for part in parts), given_up, topics)

    def _tagged(self, topics: tuple[str, ...]) -> str:
        tag = str(self._next_tag)
        self._next_tag += 1
        self._pending[tag] = topics
        return self._batching.message(topics, tag)
