"""Bus messages read back from the history store, for seqs the bus did not carry.

Everything a bus carries is stored first, so a seq missing from it is read from the store:
by an API node that sees a jump in seq (:meth:`purpleflea.bus.nats.NatsBus.start`'s
backfill) and by the ingest node that publishes what it stored while the bus refused it
(:class:`purpleflea.server.pipeline.Pipeline`). One reader for both: the same messages, the
same bytes the live publish would have carried.
"""

from __future__ import annotations

from purpleflea.bus.base import Message, cascade_frame, liquidation_frame
from purpleflea.store.base import Store


async def stored_messages(store: Store, after: int, upto: int, limit: int) -> list[Message]:
    """The stored events and cascade alerts with ``after < seq <= upto``, merged in seq
    order: a page of at most ``2 * limit``, complete up to its last seq (read the next page
    after it); empty when there is none left in that range."""
    events = await store.since(after, limit=limit)
    alerts = await store.cascades_since(after, limit=limit)
    # Both pages are complete only up to the lower of their last seqs.
    bound = upto
    for page in (events, alerts):
        if len(page) == limit:
            bound = min(bound, page[-1].seq)
    merged = sorted(
        (
            *(Message("liquidations", e.seq, e, liquidation_frame(e)) for e in events),
            *(Message("cascades", a.seq, a, cascade_frame(a)) for a in alerts),
        ),
        key=lambda m: m.seq,
    )
    return [m for m in merged if m.seq <= bound]
