"""Reading a whole store in order, a page at a time, the next page requested ahead.

A store reads in its own thread (SQLite) or connection (PostgreSQL), so asking for page n + 1
before handing out page n lets the caller's work on one page overlap the read of the next:
a replay or a warm-up waits on the disk only for the first page.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import TypeVar

from purpleflea.model import Liquidation
from purpleflea.store.base import OpenInterest, Store

T = TypeVar("T")

#: Later than any timestamp.
NEVER_MS = 2**63 - 1


async def store_pages(
    store: Store, *, after: int = 0, page: int = 20_000
) -> AsyncGenerator[list[Liquidation], None]:
    """Every stored event with seq above ``after``, in seq order, in pages."""
    pages = _read_ahead(store.since(after, page), lambda events: store.since(events[-1].seq, page))
    async with contextlib.aclosing(pages):  # closing this closes the read-ahead at once
        async for events in pages:
            yield events


async def open_interest_pages(
    store: Store, *, start_ms: int = 0, page: int = 20_000
) -> AsyncGenerator[list[OpenInterest], None]:
    """Every stored open interest row from ``start_ms`` on, in time order, in pages."""
    pages = _read_ahead(
        store.open_interest(start_ms, NEVER_MS, limit=page),
        lambda rows: store.open_interest(start_ms, NEVER_MS, after=rows[-1], limit=page),
    )
    async with contextlib.aclosing(pages):
        async for rows in pages:
            yield rows


async def _read_ahead(
    first: Awaitable[list[T]], following: Callable[[list[T]], Awaitable[list[T]]]
) -> AsyncGenerator[list[T], None]:
    """Pages until an empty one, each next page requested before this one is handed out."""
    pending = asyncio.ensure_future(first)
    try:
        while True:
            items = await pending
            if not items:
                return
            pending = asyncio.ensure_future(following(items))
            yield items
    finally:
        if not pending.done():
            pending.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pending
