"""A stream's replay of stored events, filtered by the database, a bounded page at a time.

A client resuming with a filter (``since_seq`` with markets, exchanges, sides, coverages,
``min_usd``) must not make the server read and decode every stored event to send the few it
asked for, nor pay its account's rate for them. A page walks the index ranges of the filter's
narrowest part (:func:`~purpleflea.store.sql.replay_ranges`: one per market, say), at most
``limit`` index entries in all, each range in seq order; then reads only those candidates'
rows by seq and keeps those passing the whole filter (:func:`~purpleflea.store.sql.where`,
the one that ``GET /v1/liquidations`` uses). So a page's work is at most ``limit`` index
entries and ``limit`` rows whatever the filter, and a selective filter's page covers as much
history as its ranges hold entries: a market with 1 % of the events, 100x more than a page of
all events.

Every event at or below ``reached`` has been considered: a range that filled its share stops
the page at its last entry (later entries of other ranges are read again next page); with no
range full, every range was read to its end, and ``reached`` is the store's last seq then.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import msgspec

from purpleflea.model import Liquidation
from purpleflea.store.base import Query, row_to_event
from purpleflea.store.sql import Dialect, replay_ranges, where

#: A store's read: SQL and its parameters to rows.
Read = Callable[[str, Sequence[Any]], Awaitable[list[tuple[Any, ...]]]]


class ReplayPage(msgspec.Struct, frozen=True, kw_only=True):
    """One page of a filtered replay: ``events`` (ascending seq) are every event passing the
    filter with ``after < seq <= reached``. ``full``: the page stopped at a full range
    (more may follow); else it read every range to its end. ``examined``: index entries the
    database walked for it (at most the page's ``limit``), what the page is charged for."""

    events: list[Liquidation]
    reached: int
    full: bool
    examined: int


def walk(query: Query, dialect: Dialect, after: int, limit: int) -> tuple[str, list[Any], int]:
    """The statement of a page's index walk: ``(range number, seq)`` of each range's next
    entries after ``after``, a share of ``limit`` each, and ``(-1, the store's last seq)``;
    its parameters, and the share."""
    mark = "?" if dialect == "sqlite" else "%s"
    ranges = replay_ranges(query, dialect)
    share = max(limit // len(ranges), 1)
    parts: list[str] = []
    params: list[Any] = []
    for number, walked in enumerate(ranges):
        condition = f"{walked.sql} AND " if walked.sql else ""
        parts.append(
            f"SELECT * FROM (SELECT {number} AS walk, seq FROM liquidations "
            f"WHERE {condition}seq > {mark} ORDER BY seq LIMIT {mark}) AS walk{number}"
        )
        params += [*walked.params, after, share]
    # The store's last seq in the same statement (one snapshot): a page that reads every
    # range to its end has considered every event up to it.
    parts.append("SELECT -1, (SELECT MAX(seq) FROM liquidations)")
    return " UNION ALL ".join(parts), params, share


async def replay_page(
    read: Read, select: str, query: Query, dialect: Dialect, after: int, limit: int
) -> ReplayPage:
    """The page of ``query``'s events after seq ``after`` (``select``: the store's
    ``SELECT <columns> FROM liquidations``)."""
    sql, params, share = walk(query, dialect, after, limit)
    rows = await read(sql, params)
    found = [(number, seq) for number, seq in rows if number >= 0]
    end = max((seq for number, seq in rows if number < 0 and seq is not None), default=after)
    last: dict[int, int] = {}
    counts: dict[int, int] = {}
    for number, seq in found:
        counts[number] = counts.get(number, 0) + 1
        last[number] = max(last.get(number, seq), seq)
    stopped = [last[number] for number, count in counts.items() if count == share]
    full = bool(stopped)
    reached = min(stopped) if full else max(end, after)
    candidates = sorted(seq for _, seq in found if seq <= reached)
    if not candidates:
        return ReplayPage(events=[], reached=reached, full=full, examined=len(found))
    rest = where(
        msgspec.structs.replace(query, start_ms=None, end_ms=None, before_seq=None), dialect
    )
    condition = f" AND {rest.sql.removeprefix(' WHERE ')}" if rest.sql else ""
    if dialect == "sqlite":
        # NOT INDEXED: the rows are looked up by seq (rowid) alone; a filter column's index
        # (say market) would walk all of that market's history testing each seq.
        sql = f"{select} NOT INDEXED WHERE seq IN ({', '.join('?' * len(candidates))})"
        head: list[Any] = list(candidates)
    else:
        sql = f"{select} WHERE seq = ANY(%s)"
        head = [candidates]
    rows = await read(f"{sql}{condition} ORDER BY seq", [*head, *rest.params])
    return ReplayPage(
        events=[row_to_event(row) for row in rows], reached=reached, full=full, examined=len(found)
    )
