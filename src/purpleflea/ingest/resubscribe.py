"""Keeping the good topics of a subscribe message the venue refused whole.

Bybit refuses a whole subscribe message when one of its topics is bad (a delisted or
not-yet-live symbol still in the catalog) and subscribes none of the others; its reply names
the first bad topic (``error:handler not found,topic:..``). Kraken Futures answers a bad
product id with ``{"event":"error","message":"Invalid product id"}``, naming none. One bad
symbol would then cost every market of its batch (200 on Bybit, all of Kraken's) until the
catalog changes. This is the pure part (no socket): told what was sent and each answer, it
decides what to send again and which topics to give up; the runner sends and counts.

dYdX subscribes one market a message and answers each when its fetch of the market's recent
trades ends, in no set order: an answer is matched to the batch holding the topic it names,
and one naming a topic no batch waits for is ignored (never taken for the oldest batch's).

A refusal that names a topic of the refused batch: the rest is subscribed again without it.
One that names none: the batch is split in halves, each subscribed again, until the bad
topic is alone and given up. Every message sent again answers a refusal, and a session sends
at most :data:`MAX_RESUBSCRIBES` of them: then the refused topics are given up, so a venue
refusing everything cannot turn this into a loop.

A topic listed after the session subscribed (the catalog refresh adds it) is asked for in
batches of its own (:meth:`Resubscriber.extend`), answered like the first ones.

A topic given up is asked for again on a timer within the same session (a Bybit symbol not
live yet when we connected goes live hours later; a connection can last 24 h or more): first
:data:`RETRY_FIRST` seconds after its refusal, the delay doubling on each new refusal up to
:data:`RETRY_CAP`. Only given-up topics are asked again, so a topic that delivers is never
sent twice; one accepted leaves the given-up set (:attr:`Step.accepted`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from purpleflea.venues.venue import Batching, Reply

#: Subscribe messages one session may send again. One bad topic among 300 takes about 18
#: (two a halving); a cap of 64 leaves room for a few bad topics and ends the worst case.
MAX_RESUBSCRIBES = 64
#: Seconds from a topic's first refusal to asking for it again; each refusal of the retry
#: doubles the wait, up to :data:`RETRY_CAP`: a topic refused for good costs one small
#: message every half hour.
RETRY_FIRST = 60.0
RETRY_CAP = 1800.0


@dataclass(frozen=True)
class Step:
    """What to do about one answer: ``send`` these messages now; ``given_up``: topics not
    subscribed on this connection until their retry; ``refused``: the topics the refusal
    cost; ``accepted``: topics given up before that the venue now took."""

    send: tuple[str, ...]
    given_up: tuple[str, ...]
    refused: tuple[str, ...]
    accepted: tuple[str, ...] = ()


class Resubscriber:
    """Tags each batched subscribe of one session, remembers its topics until answered,
    turns a refusal into a :class:`Step`, and says when to ask for given-up topics again
    (times are the caller's clock, in seconds)."""

    def __init__(
        self,
        batching: Batching,
        limit: int = MAX_RESUBSCRIBES,
        *,
        retry_first: float = RETRY_FIRST,
        retry_cap: float = RETRY_CAP,
    ) -> None:
        self._batching = batching
        self._pending: dict[str, tuple[str, ...]] = {}  # tag -> topics, in the order sent
        self._next_tag = 1
        #: Messages this session may still send again in answer to refusals.
        self.left = limit
        self._retry_first = retry_first
        self._retry_cap = retry_cap
        self._delay: dict[str, float] = {}  # given up (or out for retry) -> its last wait
        self._due: dict[str, float] = {}  # given up -> when to ask again
        self._size = 1  # topics of the largest batch started: retries go no larger
        #: Refusals naming nothing from a venue that answers in no set order, not placed yet.
        self._unplaced = 0
        self._asked: set[str] = set()  # every topic this session has sent a subscribe for

    def start(self, messages: Iterable[str]) -> list[str]:
        """``messages`` as they go out: each batch rebuilt with its tag and remembered."""
        out = []
        for message in messages:
            topics = self._batching.topics(message)
            if topics is not None:
                self._size = max(self._size, len(topics))
            out.append(message if topics is None else self._tagged(topics))
        return out

    def extend(self, messages: Iterable[str]) -> tuple[tuple[str, ...], list[str]]:
        """The topics of ``messages`` (the subscribe rebuilt from the catalog as it is now)
        this session has never asked for, and the tagged messages asking for them, in
        batches no larger than the largest started. Topics the catalog lost stay subscribed:
        the venue sends nothing for a delisted one."""
        new: dict[str, None] = {}  # in the order the venue's messages list them
        for message in messages:
            for topic in self._batching.topics(message) or ():
                if topic not in self._asked:
                    new[topic] = None
        fresh = tuple(new)
        size = self._size
        return fresh, [self._tagged(fresh[i : i + size]) for i in range(0, len(fresh), size)]

    def answer(self, frame: bytes | str, now: float = 0.0) -> Step | None:
        """What to do about ``frame`` (received at ``now``): a :class:`Step` if it refuses a
        batch we sent, or accepts one that asked again for given-up topics."""
        if not self._pending:
            # Nothing waits for an answer (every path below would find none): the runner asks
            # about every frame, event frames too, and this keeps their cost at one check.
            return None
        reply = self._batching.reply(frame)
        if reply is None:
            return None
        if reply.tag is None and reply.topic is None and not self._batching.ordered:
            # Which batch it refuses shows only once every other one has been answered.
            self._unplaced += reply.refused
            return self._place_unnamed(now)
        step = self._answered(reply, now)
        left = self._place_unnamed(now)
        if step is None or left is None:
            return step or left
        return Step(
            step.send + left.send,
            step.given_up + left.given_up,
            step.refused + left.refused,
            step.accepted + left.accepted,
        )

    def _answered(self, reply: Reply, now: float) -> Step | None:
        """The step for an answer that names its batch (by tag or topic), or, from a venue
        answering in order, names nothing (the oldest batch's)."""
        if reply.tag is not None:
            tag = reply.tag if reply.tag in self._pending else None
        elif reply.topic is not None:
            # No echoed id: the batch holding the topic named (Kraken acks each batch with
            # its products; dYdX answers each market, in no set order); none if no batch
            # waiting for an answer holds it.
            holding = (t for t, topics in self._pending.items() if reply.topic in topics)
            tag = next(holding, None)
        else:
            # Nothing named: the oldest, as the venue answers in the order of requests.
            tag = next(iter(self._pending), None)
        if tag is None:
            return None  # an answer to nothing we are waiting for
        topics = self._pending.pop(tag)
        if reply.refused:
            return self._split(topics, reply.topic, reply.live, now)
        accepted = self._accepted(topics)
        return Step((), (), (), accepted) if accepted else None

    def _place_unnamed(self, now: float) -> Step | None:
        """Refusals naming nothing, once as many batches wait as such refusals came: the
        batches left are the refused ones, each given up until its retry."""
        if not self._unplaced or self._unplaced < len(self._pending):
            return None
        topics = tuple(topic for batch in self._pending.values() for topic in batch)
        self._pending.clear()
        self._unplaced = 0
        self._give_up(topics, now)
        return Step((), topics, topics)

    def next_retry(self) -> float | None:
        """When the earliest given-up topic is due to be asked again; None: none is."""
        return min(self._due.values(), default=None)

    def retry(self, now: float) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """The given-up topics due at ``now`` and the tagged messages asking for them again
        (no larger than the largest batch started); each is out for retry until answered."""
        due = tuple(topic for topic, at in self._due.items() if at <= now)
        for topic in due:
            del self._due[topic]
        size = self._size
        messages = tuple(self._tagged(due[i : i + size]) for i in range(0, len(due), size))
        return due, messages

    def _accepted(self, topics: tuple[str, ...]) -> tuple[str, ...]:
        """Topics of an accepted batch that were given up before: they no longer are."""
        accepted = tuple(t for t in topics if t in self._delay and t not in self._due)
        for topic in accepted:
            del self._delay[topic]
        return accepted

    def _give_up(self, topics: tuple[str, ...], now: float) -> None:
        for topic in topics:
            last = self._delay.get(topic)
            wait = self._retry_first if last is None else min(self._retry_cap, 2 * last)
            self._delay[topic] = wait
            self._due[topic] = now + wait

    def _split(self, topics: tuple[str, ...], named: str | None, live: bool, now: float) -> Step:
        given_up: tuple[str, ...] = ()
        accepted: tuple[str, ...] = ()
        if named in topics:
            if live and named is not None:
                accepted = self._accepted((named,))  # asked again and found subscribed
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
        self._give_up(given_up, now)
        return Step(tuple(self._tagged(part) for part in parts), given_up, topics, accepted)

    def _tagged(self, topics: tuple[str, ...]) -> str:
        tag = str(self._next_tag)
        self._next_tag += 1
        self._pending[tag] = topics
        self._asked.update(topics)
        return self._batching.message(topics, tag)
