"""Gap repair: after a reconnect, fetch the missed window from the venue's REST history.

:func:`plan` (pure) decides whether a closed gap can be repaired and which window to ask
for; :func:`repair` fetches it instrument by instrument (in parts no longer than the
endpoint allows, following its pages by time or by id: :func:`_next`), hands each event to
``deliver`` (which deduplicates by id against what the live feed delivered and publishes
with the event's own ``ts``) and returns the gap settled: ``repaired`` with how many events
were new, or ``open`` with why (no REST history, window too old, nothing to ask, an error).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass

import httpx
import msgspec

from purpleflea.ingest.uptime import Gap
from purpleflea.model import Catalog, VenueLiquidation
from purpleflea.venues.venue import Absent, RepairPage, RepairSource

log = logging.getLogger("purpleflea.ingest.repair")

#: Asked for on both sides of a gap: the last frame's events may still have been in flight,
#: and some venues do not send in time order. What the feed already had deduplicates.
MARGIN_MS = 2_000
#: Pages per instrument and gap before giving up (the rest of the window stays open).
MAX_PAGES = 20

#: Publishes one repaired event; True if it was new (not seen live or repaired before).
Deliver = Callable[[VenueLiquidation], bool]


class Window(msgspec.Struct, frozen=True):
    start_ms: int
    end_ms: int


def plan(gap: Gap, source: RepairSource | Absent, now_ms: int) -> Window | str:
    """The window to fetch for a closed ``gap``, or why it stays open."""
    if isinstance(source, Absent):
        return f"no REST history: {source.reason}"
    if gap.end_ms is None:
        return "still down"
    if source.reach_ms is not None and now_ms - gap.start_ms > source.reach_ms:
        return f"window too old: the REST history reaches back {source.reach_ms // 1000} s"
    return Window(gap.start_ms - MARGIN_MS, gap.end_ms + MARGIN_MS)


def settled(gap: Gap, *, events: int | None = None, open_reason: str = "") -> Gap:
    """``gap`` marked repaired (``events`` new events) or open (``open_reason``)."""
    if events is not None:
        return msgspec.structs.replace(gap, repair="repaired", repaired_events=events, note="")
    return msgspec.structs.replace(gap, repair="open", repaired_events=0, note=open_reason)


async def fetch(
    source: RepairSource,
    client: httpx.AsyncClient,
    instrument: str,
    window: Window,
    catalog: Catalog,
) -> list[VenueLiquidation]:
    """Every event of ``instrument`` in ``window``, page after page (see :func:`_next`)."""
    found: list[VenueLiquidation] = []
    at = _Position(window.start_ms, window.end_ms)
    path = source.request(instrument, at.start_ms, at.end_ms)
    for _ in range(MAX_PAGES):
        response = await client.get(source.base + path)
        response.raise_for_status()
        page = source.parse(response.content, instrument, catalog)
        found.extend(e for e in page.events if _inside(e, window))
        following = _next(source, instrument, window, page, at) if page.more else None
        if following is None:
            return found
        path = following
        await asyncio.sleep(source.pause)
    raise RuntimeError(f"{instrument}: more than {MAX_PAGES} pages in the window")


@dataclass
class _Position:
    """Where the next page of one window starts: a time range, or an id to follow."""

    start_ms: int
    end_ms: int
    cursor: str | None = None


def _next(
    source: RepairSource, instrument: str, window: Window, page: RepairPage, at: _Position
) -> str | None:
    """The request of the page after ``page`` (which says there is more), or None when the
    window is done; ``at`` moves on.

    A source that lists oldest first is asked again from the page's newest row; one that
    lists newest first (``source.newest_first``) from its oldest, until a page reaches back
    past the window's start; one that pages by id (a page with a ``cursor``) after that id.
    The boundary row is asked for twice on purpose: several may share its time, and the
    repeats deduplicate by id. A page that does not move on could loop forever: it raises.
    """
    if page.cursor is not None:
        if source.request_after is None:
            raise RuntimeError(f"{instrument}: a page gives a cursor the source cannot ask")
        if page.cursor == at.cursor:
            raise RuntimeError(f"{instrument}: page after {at.cursor} does not advance")
        at.cursor = page.cursor
        return source.request_after(instrument, window.start_ms, window.end_ms, at.cursor)
    last = _last_ms(page, newest_first=source.newest_first)
    if last is None:
        raise RuntimeError(f"{instrument}: a page says there is more but lists no time")
    if source.newest_first:
        if last < window.start_ms:
            return None
        if last >= at.end_ms:
            raise RuntimeError(f"{instrument}: page up to {at.end_ms} ms does not advance")
        at.end_ms = last
    else:
        if last <= at.start_ms:
            raise RuntimeError(f"{instrument}: page at {at.start_ms} ms does not advance")
        at.start_ms = last
    return source.request(instrument, at.start_ms, at.end_ms)


def parts(window: Window, longest_ms: int | None) -> list[Window]:
    """``window`` cut into consecutive windows of at most ``longest_ms`` (an endpoint's
    largest query window); the whole window when there is no such limit."""
    if longest_ms is None or window.end_ms - window.start_ms <= longest_ms:
        return [window]
    found = []
    start = window.start_ms
    while start <= window.end_ms:
        end = min(start + longest_ms, window.end_ms)
        found.append(Window(start, end))
        start = end + 1
    return found


def _last_ms(page: RepairPage, *, newest_first: bool) -> int | None:
    if page.last_ms is not None:
        return page.last_ms
    stamps = [e.ts for e in page.events if e.ts is not None]
    if not stamps:
        return None
    return min(stamps) if newest_first else max(stamps)


def _inside(event: VenueLiquidation, window: Window) -> bool:
    return event.ts is not None and window.start_ms <= event.ts <= window.end_ms


async def repair(
    gap: Gap,
    source: RepairSource | Absent,
    client: httpx.AsyncClient,
    catalog: Catalog,
    deliver: Deliver,
    now_ms: int,
) -> Gap:
    """Fetch and deliver ``gap``'s window; the gap settled (see the module docstring)."""
    window = plan(gap, source, now_ms)
    if isinstance(window, str):
        return settled(gap, open_reason=window)
    assert not isinstance(source, Absent)
    instruments = source.instruments(catalog)
    if not instruments:
        return settled(gap, open_reason="no instruments to ask for: the catalog is empty")
    new = 0
    try:
        for index, instrument in enumerate(instruments):
            if index:
                await asyncio.sleep(source.pause)
            for part in parts(window, source.max_window_ms):
                for event in await fetch(source, client, instrument, part, catalog):
                    if event.quantity is None or event.size_usd is None:
                        continue
                    if deliver(event):
                        new += 1
    except (httpx.HTTPError, ValueError, RuntimeError) as exc:
        log.warning("%s: gap %s not repaired: %s", gap.exchange, gap.id, exc)
        note = f"error: {exc}" + (f" ({new} events published before it)" if new else "")
        return settled(gap, open_reason=note)
    log.info("%s: gap %s repaired, %d events published", gap.exchange, gap.id, new)
    return settled(gap, events=new)
