"""Items read back from the history store, for seqs a reader of the bus did not get.

Everything a bus carries is stored first, so a seq missing from it is read from the store:
by an API node that sees a jump in seq (:meth:`purpleflea.bus.nats.NatsBus.start`'s
backfill), by the ingest node that publishes what it stored while the bus refused it
(:class:`purpleflea.server.publish_backlog.PublishBacklog`) and by the webhook dispatcher
catching up or filling a cut subscription's gap
(:class:`purpleflea.server.webhook_dispatch.Dispatcher`). One reader for all three: events and
alerts merged in seq order, each page complete up to its last seq.
"""

from __future__ import annotations

from purpleflea.bus.base import Message, cascade_frame, liquidation_frame
from purpleflea.model import CascadeAlert, Liquidation
from purpleflea.store.base import Store


async def stored_items(
    store: Store,
    after: int,
    upto: int,
    limit: int,
    *,
    events: bool = True,
    alerts: bool = True,
) -> list[Liquidation | CascadeAlert]:
    """The stored events (``events``) and cascade alerts (``alerts``) with
    ``after < seq <= upto``, merged in seq order: a page of at most ``2 * limit``, complete up
    to its last seq (read the next page after it); empty when there is none left in that
    range."""
    pages: list[list[Liquidation] | list[CascadeAlert]] = []
    if events:
        pages.append(await store.since(after, limit=limit))
    if alerts:
        pages.append(await store.cascades_since(after, limit=limit))
    # The pages are complete only up to the lowest last seq of those that came full.
    bound = upto
    for page in pages:
        if len(page) == limit:
            bound = min(bound, page[-1].seq)
    merged = sorted((item for page in pages for item in page), key=lambda item: item.seq)
    return [item for item in merged if item.seq <= bound]


async def stored_messages(store: Store, after: int, upto: int, limit: int) -> list[Message]:
    """:func:`stored_items` as the bus messages the live publish would have carried (the
    same bytes)."""
    return [
        Message("liquidations", item.seq, item, liquidation_frame(item))
        if isinstance(item, Liquidation)
        else Message("cascades", item.seq, item, cascade_frame(item))
        for item in await stored_items(store, after, upto, limit)
    ]
