"""One client's view of the stream: replay from storage, then live, filtered, in seq order.

:func:`client_feed` is shared by the WebSocket and SSE endpoints. It subscribes to the bus
*before* reading storage, so an event published while the replay runs is buffered and not
missed; anything it has already sent (seq at or below its cursor) is skipped, so nothing is
sent twice. Heartbeats carry the cursor: every seq at or below it was sent or filtered out,
so a client resuming from it misses nothing.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from typing import TYPE_CHECKING

import msgspec

from purpleflea.bus.base import cascade_frame, liquidation_frame
from purpleflea.clock import now_ms
from purpleflea.model import CascadeAlert, Liquidation
from purpleflea.server.filters import StreamFilter
from purpleflea.store.base import Store

if TYPE_CHECKING:
    from purpleflea.server.fanout import ClientQueue

_REPLAY_PAGE = 1_000

#: Waits until the stream's account may read one more page of history (``Gate.pace``).
Pace = Callable[[], Awaitable[None]]


async def _unpaced() -> None:
    return None


class Item(msgspec.Struct, frozen=True):
    """A frame to send: ``kind`` is ``liquidation``, ``cascade`` or ``heartbeat``.

    A frozen struct rather than a frozen dataclass: the fan-out builds one or two per event
    and filter, and the struct is built ~8x faster (see :class:`~purpleflea.bus.base.Message`).
    """

    kind: str
    seq: int
    data: bytes
    #: Monotonic time its oldest event was published on this node (0: replayed from storage,
    #: a heartbeat, or from another node's bus), and how many events it carries: what the
    #: ``written`` stage latency is measured from.
    published: float = 0.0
    events: int = 1
    #: ``data`` as text when it was decoded once for every client sharing it (WebSocket text
    #: frames take a str); empty: decode it.
    text: str = ""


def heartbeat_frame(seq: int) -> bytes:
    return b'{"type":"heartbeat","seq":%d,"ts":%d}' % (seq, now_ms())


async def _replay(
    store: Store, wanted: StreamFilter, cursor: int, upto: int, pace: Pace
) -> AsyncIterator[tuple[list[Liquidation | CascadeAlert], int]]:
    """Pages of the stored items ``wanted`` after ``cursor`` and up to ``upto``, in seq order,
    each with the seq up to which every stored item was considered (the resume point after
    it); each read waits for ``pace``. Events are filtered by the store (:meth:`Store.replay`):
    a page reads at most a page of index entries, so a selective filter pays for the history
    it matches, not all. Cascade alerts (few) are read in full pages and filtered here.

    ``upto`` is a published seq: everything at or below it is stored. Past it a batch may be
    half written (its events committed, the alerts whose seqs lie between theirs not yet), so
    a cursor taken from the store's end could pass an alert still to come."""
    if cursor >= upto:  # the client is as far as this node's live position, or further
        return
    events = "liquidations" in wanted.channels
    cascades = "cascades" in wanted.channels
    query = wanted.query()
    while True:
        page: list[Liquidation | CascadeAlert] = []
        read = False
        # How far each channel's read is complete (None: to the store's end).
        complete: list[int | None] = []
        ends: list[int] = [cursor]
        if events:
            await pace()
            found = await store.replay(cursor, query, _REPLAY_PAGE)
            page.extend(found.events)
            read = read or found.examined > 0
            complete.append(found.reached if found.full else None)
            ends.append(found.reached)
        if cascades:
            await pace()
            alerts = await store.cascades_since(cursor, _REPLAY_PAGE)
            page.extend(alert for alert in alerts if wanted.wants(alert))
            read = read or bool(alerts)
            if alerts:
                complete.append(alerts[-1].seq if len(alerts) == _REPLAY_PAGE else None)
                ends.append(alerts[-1].seq)
        if not read:
            if min(max(ends), upto) > cursor:  # nothing more matched, up to the store's end
                yield [], min(max(ends), upto)
            return
        page.sort(key=lambda item: item.seq)
        # Only up to the nearest full channel's end is the merge known complete.
        bounds = [seq for seq in complete if seq is not None]
        cursor = min(min(bounds) if bounds else max(ends), upto)
        yield [item for item in page if item.seq <= cursor], cursor
        if cursor >= upto:
            return


def _frame(item: Liquidation | CascadeAlert) -> Item:
    if isinstance(item, Liquidation):
        return Item("liquidation", item.seq, liquidation_frame(item))
    return Item("cascade", item.seq, cascade_frame(item))


def batch_frame(frames: list[bytes]) -> bytes:
    """Several stream frames in one: ``{"type":"batch","items":[frame, ...]}``."""
    return b'{"type":"batch","items":[' + b",".join(frames) + b"]}"


async def client_feed(
    store: Store,
    subscription: ClientQueue,
    wanted: StreamFilter,
    *,
    start_seq: int,
    batch: int = 0,
    pace: Pace = _unpaced,
    opened_seq: int | None = None,
) -> AsyncIterator[Item]:
    """Frames for one client. ``start_seq``: the live position when the client subscribed;
    ``opened_seq``: the live position when the server counted the stream open (admitted it,
    before its subscribe message came): a client without ``since_seq`` gets everything after
    it, what was published before it subscribed replayed from storage (:func:`first_seq`);
    ``subscription``: its queue in the node's fan-out (:mod:`purpleflea.server.fanout`);
    ``pace``: awaited before each page of the replay is read (the account's rate limit: a
    resume reads history as REST paging does, and pays for it alike). While a page is read the
    subscription is on hold (:attr:`~purpleflea.server.fanout.ClientQueue.on_hold`): what it
    drops then, the replay goes on to read from storage before the feed goes live.

    With ``batch`` > 1, the events published together (up to ``batch`` in one frame) go out
    as one ``batch`` frame: under load a client then costs one frame per published batch, not
    one per event. A heartbeat goes out when the replay is done and then whenever the
    fan-out's timer finds nothing written for its heartbeat interval. Raises
    :class:`~purpleflea.bus.base.SubscriptionClosed` when its queue is closed.
    """
    from purpleflea.server.fanout import BEAT  # noqa: PLC0415 (fanout imports this module)

    cursor = first_seq(wanted, start_seq, opened_seq)
    upto = start_seq
    while True:
        pending: list[Item] = []
        subscription.on_hold = True  # until a page is read: the store's and the pace's time
        async for stored, reached in _replay(store, wanted, cursor, upto, pace):
            subscription.on_hold = False  # writing it: the client's time
            for found in stored:
                pending.append(_frame(found))
                if len(pending) >= max(batch, 1):
                    yield _bundle(pending)
                    pending = []
            cursor = reached
            subscription.on_hold = True
        subscription.on_hold = False
        if pending:
            yield _bundle(pending)
        if subscription.dropped_upto <= upto:
            break
        upto = subscription.dropped_upto  # dropped while on hold: read from storage as well
    subscription.wrote_at = time.monotonic()  # live: the heartbeat timer may beat it now
    yield Item("heartbeat", cursor, heartbeat_frame(cursor))
    # The filter its frames are shared under: the resume point is this client's own.
    live = replace(wanted, since_seq=None)
    while True:
        for chunk in (await subscription.next(), *subscription.drain()):
            if chunk is BEAT:
                subscription.beat_pending = False
                # Not when something went out since the timer sent it: that frame was news.
                if subscription.wrote_at <= subscription.beat_at:
                    subscription.wrote_at = time.monotonic()
                    yield Item("heartbeat", cursor, heartbeat_frame(cursor))
                continue
            items = chunk.items(live, batch, cursor)  # empty when already replayed
            cursor = max(cursor, chunk.last_seq)
            if items:
                subscription.wrote_at = time.monotonic()
                for item in items:
                    yield item


def first_seq(wanted: StreamFilter, start_seq: int, opened_seq: int | None) -> int:
    """The seq a client's stream goes on from: its ``since_seq``, else
    :func:`subscribed_seq`. From the moment a stream counts as open (``open_for``), no event
    published is missed, however late its subscribe comes."""
    if wanted.since_seq is not None:
        return wanted.since_seq
    return subscribed_seq(wanted, start_seq, opened_seq)


def subscribed_seq(wanted: StreamFilter, start_seq: int, opened_seq: int | None) -> int:
    """The seq a client's ``subscribed`` frame names: where the tracker was when the server
    counted the stream open, else (a resume with ``since_seq``, or not known) the live
    position when it subscribed."""
    if wanted.since_seq is not None or opened_seq is None:
        return start_seq
    return min(opened_seq, start_seq)


def _bundle(items: list[Item]) -> Item:
    """One item as it is; several as a batch frame (whose seq is its last item's)."""
    if len(items) == 1:
        return items[0]
    # Items come in seq order, so the first was published first (0 when replayed: all are).
    return Item(
        "batch",
        items[-1].seq,
        batch_frame([item.data for item in items]),
        items[0].published,
        len(items),
    )
