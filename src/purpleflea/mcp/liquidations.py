"""The ``recent_liquidations`` tool: the newest individual liquidations, filtered."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Literal

from mcp_types import CallToolResult
from pydantic import BeforeValidator, Field, WithJsonSchema

from purpleflea.client import LiquidationClient
from purpleflea.client.seen import before_history, unseen_markets
from purpleflea.clock import now_ms
from purpleflea.formatting import format_usd
from purpleflea.mcp import arguments
from purpleflea.mcp.answers import (
    MINUTE_MS,
    NAMES,
    NULL,
    YEAR_MINUTES,
    EndArg,
    MarketsArg,
    also_text,
    event_line,
    not_recorded,
    provenance,
    provenance_line,
    result,
    server_errors,
    unseen_text,
    upper,
)
from purpleflea.model import Liquidation
from purpleflea.venues import registry

ExchangesArg = Annotated[
    list[str] | None,
    BeforeValidator(arguments.listed),
    also_text(NAMES, NULL),
    Field(
        description=f"Only these exchanges: {', '.join(registry.EXCHANGE_IDS)}, "
        "sim (the simulator); any case. Omit for all."
    ),
]
SideArg = Annotated[
    Literal["long", "short"] | None,
    BeforeValidator(arguments.side_or_every),
    # 'both' is in the description (and read as leaving side out): the schema lists it too.
    WithJsonSchema({"anyOf": [{"type": "string", "enum": ["long", "short", "both"]}, NULL]}),
    Field(
        description="'long' = only liquidated longs, 'short' = only liquidated shorts; "
        "omit (or 'both') for both."
    ),
]
# Bounds before the reading validator, as answers.WindowArg says why.
MinUsdArg = Annotated[
    float,
    Field(ge=0, description="Only liquidations of at least this many USD ('$100k' is taken too)."),
    BeforeValidator(arguments.usd),
    also_text({"type": "number", "minimum": 0}),
]
SinceArg = Annotated[
    float | None,
    Field(
        gt=0,
        le=YEAR_MINUTES,
        description="Only the last N minutes before end_ms (by exchange time); a duration "
        "such as '90m', '6h' is taken too. Omit for no time limit.",
    ),
    BeforeValidator(arguments.minutes),
    also_text({"type": "number", "exclusiveMinimum": 0, "maximum": YEAR_MINUTES}, NULL),
]
LimitArg = Annotated[
    int, Field(ge=1, le=100, description="At most this many events (1-100, default 20).")
]
CursorArg = Annotated[
    str | None,
    Field(
        description="The next_cursor of an earlier answer, sent with the same other "
        "arguments: the next older page. Omit for the newest."
    ),
]


class LiquidationTools:
    """The individual-event tools, answering from ``client``'s server."""

    def __init__(self, client: LiquidationClient) -> None:
        self.client = client

    async def recent_liquidations(
        self,
        markets: MarketsArg = None,
        exchanges: ExchangesArg = None,
        side: SideArg = None,
        min_usd: MinUsdArg = 0.0,
        since_minutes: SinceArg = None,
        limit: LimitArg = 20,
        end_ms: EndArg = None,
        cursor: CursorArg = None,
    ) -> CallToolResult:
        """The newest individual liquidations by event time, newest first, with optional
        filters; before end_ms to look at the past (imported history, an earlier crash).

        Each event: market, side (the liquidated position), size_usd (notional, USD), price
        (what the venue sends: the average fill on most, but provenance.price lists the venues
        whose price is the position's bankruptcy price or the liquidation order's price, both
        away from the market), quantity (coins), exchange, ts (exchange time, ms since the
        epoch), cascade_score (0-10: how strongly a cascade was developing on that market and
        side) and coverage (complete: the venue sends every liquidation; snapshot: a throttled
        sample, e.g. Binance's one per symbol per second; sampled: only watched accounts). The
        provenance: measured, the venues included with their coverage and price kind, and how
        many seconds old the newest event is. truncated: true when more events match than
        limit returned (their total is then not the filters' total: market_stats has it);
        next_cursor, sent back as cursor with the same arguments, gives the next older page.
        """
        # Events before end_ms (default: now), the newest first: the past is looked at as
        # market_stats looks at it.
        # Exchange ids are lower case; a model writes them as venues spell their names.
        exchanges = [e.strip().lower() for e in exchanges] if exchanges else None
        until = end_ms if end_ms is not None else now_ms()
        start = until - int(since_minutes * MINUTE_MS) if since_minutes else None
        wanted = Filters(
            markets=upper(markets), exchanges=exchanges, sides=side, min_usd=min_usd or None
        )
        async with server_errors(self.client.base_url):
            events, next_cursor = await newest_by_time(
                self.client, wanted, start=start, end=end_ms, count=limit, cursor=cursor
            )
            truncated = next_cursor is not None
            unseen = [] if events else await unseen_markets(self.client, wanted.markets)
            # Nothing stored before the end at all: not a quiet tape, an unrecorded one.
            unrecorded = await before_history(self.client, bool(events or unseen), until)
        filters: dict[str, Any] = {
            "markets": upper(markets),
            "exchanges": exchanges,
            "side": side,
            "min_usd": min_usd,
            "since_minutes": since_minutes,
            "limit": limit,
            "end_ms": end_ms,
            "cursor": cursor,
        }
        found = provenance(
            "measured",
            {e.exchange: e.coverage for e in events},
            max((e.ts for e in events), default=None),
        )
        # More events match than the limit let through (truncated): the answer's total is not
        # the filters' total, and an agent must be told so rather than read it as one.
        data: dict[str, Any] = {
            "count": len(events),
            "truncated": truncated,
            "next_cursor": next_cursor,
            "history_starts_after_window": unrecorded,
            "events": [e.to_dict() for e in events],
            "filters": filters,
            "provenance": found,
        }
        text = _text(events, next_cursor, limit)
        if unseen:
            data["unseen_markets"] = unseen
            text += " " + unseen_text(unseen)
        elif unrecorded:
            text = "No liquidations match these filters" + not_recorded(until).removeprefix(
                "no liquidations"
            )
        return result(f"{text}\n{provenance_line(found)}", data)


@dataclass(frozen=True, slots=True)
class Filters:
    """The history filters of one question (None: any)."""

    markets: list[str] | None = None
    exchanges: list[str] | None = None
    sides: str | None = None
    min_usd: float | None = None

    def read(self, start: int | None, end: int | None, limit: int) -> dict[str, Any]:
        """The arguments of a history read of [start, end) with these filters, ``limit``
        events a page (one place to spell a history read's arguments)."""
        return {
            "markets": self.markets,
            "exchanges": self.exchanges,
            "sides": self.sides,
            "min_usd": self.min_usd,
            "start": start,
            "end": end,
            "limit": limit,
        }


async def newest_by_time(
    client: LiquidationClient,
    wanted: Filters,
    *,
    start: int | None,
    end: int | None,
    count: int,
    cursor: str | None = None,
) -> tuple[list[Liquidation], str | None]:
    """The ``count`` matching events with the latest ``ts`` in [start, end) (None: unbounded),
    newest first (ties: the last stored first), older than ``cursor`` (a page's next cursor),
    and the cursor of the next page (None: no more match).

    One history page in time order (``order=ts``, read along the stores' ts index). The
    default order is the order events were stored, not time order: a recording imported into
    the folder, or a late feed, is stored after newer events, and its old events were
    answered as "the newest"; reading windows back in time instead took about four
    1,000-event pages on a busy minute to answer 20."""
    page = await client.history(**wanted.read(start, end, count), order="ts", cursor=cursor)
    return page.events, None if page.next_cursor is None else str(page.next_cursor)


def _text(events: list[Liquidation], next_cursor: str | None, limit: int) -> str:
    if not events:
        return "No liquidations match these filters."
    total = sum(e.size_usd for e in events)
    if next_cursor is not None:
        head = (
            f"The {len(events)} newest of more matching liquidations (limit {limit}), "
            f"{format_usd(total)} in these, newest first:"
        )
        tail = [
            f"More match: cursor '{next_cursor}' (same other arguments) gives the next older "
            "page; or raise limit (up to 100), narrow the filters or since_minutes, or use "
            "market_stats / market_summary for totals."
        ]
    else:
        head = f"{len(events)} liquidations, {format_usd(total)} in total, newest first:"
        tail = []
    return "\n".join([head, *(event_line(e) for e in events), *tail])
