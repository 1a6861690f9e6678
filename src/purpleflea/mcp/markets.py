"""The market tools: ``market_stats`` (one market's totals) and ``market_summary`` (a
briefing on one market or the whole tape), and the queries they share."""

from __future__ import annotations

from typing import Annotated, Any

from mcp_types import CallToolResult
from pydantic import BeforeValidator, Field

from purpleflea.client import LiquidationClient
from purpleflea.client.seen import before_history, market_seen
from purpleflea.clock import now_ms
from purpleflea.formatting import format_price, format_usd
from purpleflea.mcp import arguments
from purpleflea.mcp.answers import (
    MINUTE_MS,
    EndArg,
    MarketArg,
    WindowArg,
    event_line,
    never_seen,
    not_recorded,
    price_note,
    provenance,
    provenance_line,
    result,
    server_errors,
    span,
    utc,
    venue_coverage,
    window,
)
from purpleflea.mcp.cascades import cascade_dict, strongest_active
from purpleflea.model import CascadeAlert, Liquidation

#: ``estimate.calibration``: a complete venue of the answer's markets had events in the
#: window (hours without one still take the prior), or none did (the prior alone).
CALIBRATED = "complete_venues"
PRIOR_ONLY = "prior_only"
METHOD = (
    "measured plus what snapshot (throttled) feeds are estimated to have hidden, calibrated "
    "on complete venues of the same market and hour (an hour without one: a flat prior of 2 "
    "events per second shown) (docs/coverage.md)"
)
PRIOR_METHOD = (
    "measured plus a flat prior for what snapshot (throttled) feeds hid (2 events per second "
    "shown, est = about 2x the measure): no complete venue had events in the window to "
    "calibrate on, and the prior is not validated on real data (docs/coverage.md)"
)

HOUR_MS = 60 * MINUTE_MS
DAY_MS = 24 * HOUR_MS

#: History pages the "largest events" scan reads at most (each up to 1,000 events).
MAX_SCAN_PAGES = 20

#: ``market_summary``'s active cascades: the strongest it lists (all are counted).
LISTED_CASCADES = 5

#: USD and event count per liquidated side, measured and estimated:
#: {"long": {"usd": .., "count": .., "est_usd": .., "est_count": ..}, "short": ..}.
SideTotals = dict[str, dict[str, float]]

OptionalMarketArg = Annotated[
    str | None,
    BeforeValidator(arguments.market_or_every),
    Field(description="A market such as 'BTC-PERP'; omit (or 'all') to summarize every market."),
]


async def largest_events(
    client: LiquidationClient,
    *,
    markets: list[str] | None,
    start: int,
    end: int,
    count: int,
    page_size: int = 1000,
) -> tuple[list[Liquidation], bool]:
    """The ``count`` largest events in [start, end), and whether the scan was cut short.

    Pages walk back in time; once ``count`` events are held, later pages ask only for events
    at least as large as the smallest held (``min_usd``), so a busy window costs few pages.
    """
    best: list[Liquidation] = []
    cursor: int | str | None = None
    threshold: float | None = None
    for _ in range(MAX_SCAN_PAGES):
        page = await client.history(
            markets=markets, start=start, end=end, min_usd=threshold, cursor=cursor, limit=page_size
        )
        best = sorted([*best, *page.events], key=lambda e: -e.size_usd)[:count]
        if page.next_cursor is None:
            return best, False
        cursor = page.next_cursor
        if len(best) == count:
            threshold = best[-1].size_usd
    return best, True


async def side_totals(
    client: LiquidationClient, *, markets: list[str] | None, start: int, end: int
) -> SideTotals:
    """USD and event counts per liquidated side in [start, end), measured and estimated."""
    totals = {
        side: {"usd": 0.0, "count": 0, "est_usd": 0.0, "est_count": 0} for side in ("long", "short")
    }
    for bucket in await client.aggregate(
        interval="1d", group_by="side", markets=markets, start=start, end=end
    ):
        cell = totals[bucket.group]
        cell["usd"] += bucket.size_usd
        cell["count"] += bucket.count
        # A server older than the estimate sends 0: then the measure is all there is.
        cell["est_usd"] += max(bucket.est_size_usd, bucket.size_usd)
        cell["est_count"] += max(bucket.est_count, bucket.count)
    return totals


async def newest_ts(
    client: LiquidationClient, *, markets: list[str] | None, start: int, end: int
) -> int | None:
    """The time of the newest event in [start, end) (None: there is none).

    History pages come in seq order, the order events arrived, which is not their time order
    (a late feed; older files imported after newer ones): the last stored event can be hours
    older than the newest. The window's last day with events, then that day's last hour, then
    its last minute, are found from the rollups (by side: two small answers each, where by
    market a year of hours of every market was millions of buckets); that minute's events are
    read whole."""
    low, high = start, end
    for interval, width in (("1d", DAY_MS), ("1h", HOUR_MS), ("1m", MINUTE_MS)):
        buckets = await client.aggregate(
            interval=interval, group_by="side", markets=markets, start=low, end=high
        )
        if not buckets:
            if interval == "1d":
                return None
            break  # the rollups moved meanwhile: read what is narrowed so far
        last = max(b.start_ms for b in buckets)
        low, high = max(low, last), min(high, last + width)
    newest: int | None = None
    async for event in client.history_all(markets=markets, start=low, end=high, limit=1000):
        newest = event.ts if newest is None else max(newest, event.ts)
    return newest


async def aggregate_provenance(
    client: LiquidationClient, *, markets: list[str] | None, start: int, end: int
) -> dict[str, Any]:
    """The provenance of totals over [start, end): the venues that contributed (with their
    coverage), the newest event's age, and the modelled estimate beside the measure."""
    per_exchange = await client.aggregate(
        interval="1d", group_by="exchange", markets=markets, start=start, end=end
    )
    newest = await newest_ts(client, markets=markets, start=start, end=end)
    measured = sum(b.size_usd for b in per_exchange)
    estimated = sum(max(b.est_size_usd, b.size_usd) for b in per_exchange)
    hidden_by = sorted(
        {b.group for b in per_exchange if max(b.est_size_usd, b.size_usd) > b.size_usd}
    )
    # The estimate is calibrated only where a complete venue had events in the same market
    # and hour; with none in the whole answer (a recording of one throttled venue, imported)
    # every hidden dollar is the flat prior, which nothing here validates.
    calibrated = any(venue_coverage(b.group) == "complete" for b in per_exchange)
    return provenance(
        "measured",
        {b.group: venue_coverage(b.group) for b in per_exchange},
        newest,
        estimate={
            "basis": "modelled",
            "est_usd": estimated,
            "est_count": sum(max(b.est_count, b.count) for b in per_exchange),
            "hidden_usd": estimated - measured,
            "estimated_for": hidden_by,
            "calibration": CALIBRATED if calibrated else PRIOR_ONLY,
            "method": METHOD if calibrated else PRIOR_METHOD,
        },
    )


async def top_markets(
    client: LiquidationClient, *, start: int, end: int, count: int = 5
) -> list[dict[str, Any]]:
    """The ``count`` markets with the most USD liquidated in [start, end)."""
    per_market: dict[str, float] = {}
    for bucket in await client.aggregate(interval="1d", group_by="market", start=start, end=end):
        per_market[bucket.group] = per_market.get(bucket.group, 0.0) + bucket.size_usd
    ranked = sorted(per_market.items(), key=lambda item: -item[1])[:count]
    return [{"market": m, "usd": v} for m, v in ranked]


def dominant(totals: SideTotals) -> str | None:
    """The side with more USD liquidated (longs on a tie); None when nothing was."""
    longs, shorts = totals["long"]["usd"], totals["short"]["usd"]
    if longs == shorts == 0:
        return None
    return "long" if longs >= shorts else "short"


def _sides(totals: SideTotals) -> dict[str, Any]:
    """Totals as answered: per side, the total, the count and the dominant side."""
    long, short = totals["long"], totals["short"]
    return {
        "long": {
            "usd": long["usd"],
            "count": int(long["count"]),
            "est_usd": long["est_usd"],
            "est_count": int(long["est_count"]),
        },
        "short": {
            "usd": short["usd"],
            "count": int(short["count"]),
            "est_usd": short["est_usd"],
            "est_count": int(short["est_count"]),
        },
        "total_usd": long["usd"] + short["usd"],
        "count": int(long["count"] + short["count"]),
        "est_total_usd": long["est_usd"] + short["est_usd"],
        "est_count": int(long["est_count"] + short["est_count"]),
        "dominant_side": dominant(totals),
    }


class MarketTools:
    """The market tools, answering from ``client``'s server."""

    def __init__(self, client: LiquidationClient) -> None:
        self.client = client

    async def market_stats(
        self, market: MarketArg, window_minutes: WindowArg = 60, end_ms: EndArg = None
    ) -> CallToolResult:
        """One market's liquidation totals over a window: USD and event counts of liquidated
        longs and shorts, the total, the dominant side, and the single largest liquidation.

        usd/count are measured (what the venues sent); est_usd/est_count add what throttled
        (snapshot) feeds such as Binance's are estimated to have hidden (modelled). The
        provenance says which venues are included with their coverage, and how many seconds
        old the newest event is. The window is minute-aligned: [end - window_minutes, end),
        end rounded up to a minute.
        """
        name = market.strip().upper()
        start, end = window(window_minutes, end_ms)
        async with server_errors(self.client.base_url):
            totals = await side_totals(self.client, markets=[name], start=start, end=end)
            largest, truncated = await largest_events(
                self.client, markets=[name], start=start, end=end, count=1
            )
            found = await aggregate_provenance(self.client, markets=[name], start=start, end=end)
            sides = _sides(totals)
            seen = sides["count"] > 0 or await market_seen(self.client, name)
            unrecorded = await before_history(self.client, sides["count"] > 0 or not seen, end)
        data = {
            "market": name,
            "market_seen": seen,
            "history_starts_after_window": unrecorded,
            "window_minutes": window_minutes,
            "start_ms": start,
            "end_ms": end,
            **sides,
            "largest": largest[0].to_dict() if largest else None,
            "largest_scan_truncated": truncated,
            "provenance": found,
        }
        text = _stats_text(name, window_minutes, end, sides, largest)
        if not seen:
            text = f"{name}: {never_seen(name)}"
        elif unrecorded:
            text = f"{name}: {not_recorded(end)}"
        return result(f"{text} {provenance_line(found)}", data)

    async def market_summary(
        self,
        market: OptionalMarketArg = None,
        window_minutes: WindowArg = 60,
        end_ms: EndArg = None,
    ) -> CallToolResult:
        """A short plain-language briefing on one market or the whole tape over a window:
        total liquidated (USD), longs vs shorts and which side dominates, the top markets
        (whole tape), the cascades active now (now, even for a past end_ms: all counted in
        active_cascade_count, the five newest listed) and the three biggest prints; measured
        totals with the modelled estimate of what throttled feeds hid (est_*), and the
        provenance (venues and their coverage, freshness in seconds)."""
        name = market.strip().upper() if market else None
        markets = [name] if name else None
        start, end = window(window_minutes, end_ms)
        client = self.client
        async with server_errors(client.base_url):
            totals = await side_totals(client, markets=markets, start=start, end=end)
            top = [] if name else await top_markets(client, start=start, end=end)
            active, active_count = await strongest_active(client, markets, LISTED_CASCADES)
            biggest, truncated = await largest_events(
                client, markets=markets, start=start, end=end, count=3
            )
            found = await aggregate_provenance(client, markets=markets, start=start, end=end)
            sides = _sides(totals)
            seen = name is None or sides["count"] > 0 or await market_seen(client, name)
            unrecorded = await before_history(client, sides["count"] > 0 or not seen, end)
        data = {
            "market": name,
            "market_seen": seen,
            "history_starts_after_window": unrecorded,
            "window_minutes": window_minutes,
            "start_ms": start,
            "end_ms": end,
            **sides,
            "top_markets": top,
            "active_cascades": [cascade_dict(a) for a in active],
            "active_cascade_count": active_count,
            "biggest": [e.to_dict() for e in biggest],
            "biggest_scan_truncated": truncated,
            "provenance": found,
        }
        heading = f"{name or 'All markets'}, last {span(window_minutes)} (to {utc(end)}):"
        # Cascades are asked as they are now: a window that ended earlier says so of them.
        past = end < now_ms()
        told = _summary(sides, top, active, biggest, past=past, active_count=active_count)
        if name and not seen:
            told = [never_seen(name)]
        elif unrecorded:
            told = [not_recorded(end), *told[1:]]  # the active cascades (of now) stay
        sentences = [heading, *told, provenance_line(found)]
        return result(" ".join(sentences), data)


def _stats_text(
    market: str, minutes: int, end: int, sides: dict[str, Any], largest: list[Liquidation]
) -> str:
    if sides["count"] == 0:
        return f"{market}: no liquidations in the {span(minutes)} up to {utc(end)}."
    longs, shorts = sides["long"], sides["short"]
    text = (
        f"{market}, {span(minutes)} up to {utc(end)}: {format_usd(sides['total_usd'])} in "
        f"{sides['count']:,} liquidations; longs {format_usd(longs['usd'])} ({longs['count']:,}), "
        f"shorts {format_usd(shorts['usd'])} ({shorts['count']:,}); "
        f"{sides['dominant_side']}s dominate."
    )
    if largest:
        text += f" Largest: {event_line(largest[0])}."
    return text


def _summary(
    sides: dict[str, Any],
    top: list[dict[str, Any]],
    active: list[CascadeAlert],
    biggest: list[Liquidation],
    *,
    past: bool = False,
    active_count: int | None = None,
) -> list[str]:
    """The briefing's sentences after its heading; ``past``: the window ended before now, so
    the active cascades (the server's of now) are said to be of now, not of the window;
    ``active_count``: how many are active, of which ``active`` are the strongest."""
    sentences: list[str] = []
    total, side = sides["total_usd"], sides["dominant_side"]
    if sides["count"] == 0:
        sentences.append("no liquidations.")
    else:
        share = sides[side or "long"]["usd"] / total if total else 0.0
        sentences.append(
            f"{format_usd(total)} liquidated in {sides['count']:,} events; longs "
            f"{format_usd(sides['long']['usd'])}, shorts {format_usd(sides['short']['usd'])} — "
            f"{side}s dominate ({share:.0%})."
        )
    if top:
        sentences.append(
            "Top markets: " + ", ".join(f"{m['market']} {format_usd(m['usd'])}" for m in top) + "."
        )
    count = len(active) if active_count is None else active_count
    some = f"the {len(active)} strongest" if count > len(active) else ""
    if past:
        now = " active now (after this window)"
        listed = f"{count:,} cascade(s){now}" if active else f"No cascades{now}."
    else:
        listed = f"{count:,} active cascade(s)" if active else "No active cascades."
    if active:
        listed += f", {some}: " if some else ": "
    sentences.append(listed + " ".join(a.message for a in active))
    if biggest:
        prints = "; ".join(
            f"{format_usd(e.size_usd)} {e.side} {e.market} at {format_price(e.price)} "
            f"({price_note(e.exchange)}{e.exchange}, {utc(e.ts)})"
            for e in biggest
        )
        sentences.append(f"Biggest prints: {prints}.")
    return sentences
