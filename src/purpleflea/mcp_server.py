"""Agent tools: an MCP server (stdio) over a Purple Flea server, through the SDK.

``purpleflea mcp --url URL --api-key KEY`` (or ``python -m purpleflea.mcp_server``) starts it;
an MCP host (Claude Desktop, an agent framework) launches that command and talks over
stdin/stdout. Every tool answers with a short text for the model to read and the same data as
structured JSON (``structuredContent``, and as a second text block for hosts that ignore it).
Tools never invent data: an empty window says so, a market without a heatmap says so.

Units everywhere: money in USD, times in ms since the epoch (UTC), windows in minutes. ``side``
is always the side of the *liquidated position*: ``long`` means longs were force-sold.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

import httpx
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp_types import CallToolResult, TextContent, ToolAnnotations
from pydantic import Field

from purpleflea.client import LiquidationClient, PurpleFleaError
from purpleflea.formatting import format_price
from purpleflea.model import CascadeAlert, Liquidation
from purpleflea.venues import registry

#: History pages the "largest events" scan reads at most (each up to 1,000 events).
MAX_SCAN_PAGES = 20
_MINUTE_MS = 60_000
_YEAR_MINUTES = 525_600

INSTRUCTIONS = (
    "Purple Flea liquidation tracker: forced liquidations across crypto perpetual-futures "
    "exchanges, normalized. Markets are named like BTC-PERP, ETH-PERP (same name on every "
    "exchange). side = the liquidated position: 'long' = longs were liquidated (forced sells, "
    "downside pressure), 'short' = shorts were liquidated (forced buys). Money is USD; times "
    "are ms since the epoch (UTC). Start with market_summary for an overview, cascades for "
    "what is unfolding now, heatmap_clusters for where the next liquidations sit."
)

MarketsArg = Annotated[
    list[str] | None,
    Field(
        description="Only these markets, e.g. ['BTC-PERP', 'ETH-PERP'] (normalized names, "
        "case-insensitive). Omit for every market."
    ),
]
MarketArg = Annotated[
    str, Field(description="A normalized market name such as 'BTC-PERP' or 'ETH-PERP'.")
]
WindowArg = Annotated[
    int,
    Field(
        ge=1,
        le=_YEAR_MINUTES,
        description="Length of the window in minutes, ending at end_ms (default 60).",
    ),
]
EndArg = Annotated[
    int | None,
    Field(
        description="End of the window, ms since the epoch (UTC). Omit for now; set it to "
        "look at history (e.g. imported recordings)."
    ),
]


# -- formatting ---------------------------------------------------------------------------


def usd(value: float) -> str:
    """``$3.2M``, ``$45.1k``, ``$950``: money as an agent reads it."""
    for scale, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= scale:
            return f"${value / scale:,.1f}{suffix}"
    return f"${value:,.0f}"


def utc(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def event_line(event: Liquidation) -> str:
    return (
        f"{utc(event.ts)} {event.market} {event.side} {usd(event.size_usd)} at "
        f"{format_price(event.price)} ({event.exchange}, {event.coverage} feed), "
        f"cascade score {event.cascade_score}/10"
    )


def result(text: str, data: dict[str, Any]) -> CallToolResult:
    """The tool answer: concise text, then the structured JSON (also as text, per the spec)."""
    return CallToolResult(
        content=[
            TextContent(type="text", text=text),
            TextContent(type="text", text=json.dumps(data, separators=(",", ":"))),
        ],
        structured_content=data,
    )


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _window(window_minutes: int, end_ms: int | None) -> tuple[int, int]:
    """Minute-aligned [start, end): aggregates then read per-minute rollups."""
    end = end_ms if end_ms is not None else _now_ms()
    end = -(-end // _MINUTE_MS) * _MINUTE_MS
    return end - window_minutes * _MINUTE_MS, end


def _upper(values: Sequence[str] | None) -> list[str] | None:
    return [v.strip().upper() for v in values] if values else None


@asynccontextmanager
async def _server_errors(base_url: str) -> AsyncIterator[None]:
    """Server and network failures become tool errors the agent can read."""
    try:
        yield
    except PurpleFleaError as exc:
        raise ToolError(f"Purple Flea server refused: {exc} ({exc.code})") from exc
    except httpx.HTTPError as exc:
        raise ToolError(f"cannot reach the Purple Flea server at {base_url}: {exc!r}") from exc


# -- queries shared by tools --------------------------------------------------------------


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
    cursor: int | None = None
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
) -> dict[str, dict[str, float]]:
    """USD and event counts per liquidated side in [start, end)."""
    totals = {side: {"usd": 0.0, "count": 0} for side in ("long", "short")}
    for bucket in await client.aggregate(
        interval="1d", group_by="side", markets=markets, start=start, end=end
    ):
        cell = totals[bucket.group]
        cell["usd"] += bucket.size_usd
        cell["count"] += bucket.count
    return totals


def dominant(totals: dict[str, dict[str, float]]) -> str | None:
    longs, shorts = totals["long"]["usd"], totals["short"]["usd"]
    if longs == shorts == 0:
        return None
    return "long" if longs >= shorts else "short"


def _cascade_dict(alert: CascadeAlert) -> dict[str, Any]:
    return alert.to_dict() | {"exchanges": list(alert.exchanges)}


def _heatmap_clusters(body: Any) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The heatmap object and its clusters, whether or not the route wraps it."""
    heatmap = body.get("heatmap", body) if isinstance(body, dict) else None
    if not isinstance(heatmap, dict) or not isinstance(heatmap.get("clusters"), list):
        raise ToolError("the server's heatmap answer has no 'clusters' list")
    return heatmap, [c for c in heatmap["clusters"] if isinstance(c, dict)]


# -- the server ---------------------------------------------------------------------------


def build_server(client: LiquidationClient) -> MCPServer:
    """The MCP server with its five tools, answering from ``client``'s Purple Flea server."""
    server: MCPServer = MCPServer("purpleflea", instructions=INSTRUCTIONS)
    read_only = ToolAnnotations(read_only_hint=True, open_world_hint=True)

    async def recent_liquidations(
        markets: MarketsArg = None,
        exchanges: Annotated[
            list[str] | None,
            Field(
                description=f"Only these exchanges: {', '.join(registry.EXCHANGE_IDS)}, "
                "sim (the simulator). Omit for all."
            ),
        ] = None,
        side: Annotated[
            Literal["long", "short"] | None,
            Field(
                description="'long' = only liquidated longs, 'short' = only liquidated shorts; "
                "omit for both."
            ),
        ] = None,
        min_usd: Annotated[
            float, Field(ge=0, description="Only liquidations of at least this many USD.")
        ] = 0.0,
        since_minutes: Annotated[
            float | None,
            Field(
                gt=0,
                le=_YEAR_MINUTES,
                description="Only the last N minutes (by exchange time). Omit for no time "
                "limit (the newest stored events).",
            ),
        ] = None,
        limit: Annotated[
            int, Field(ge=1, le=100, description="At most this many events (1-100, default 20).")
        ] = 20,
    ) -> CallToolResult:
        """The newest individual liquidations, newest first, with optional filters.

        Each event: market, side (the liquidated position), size_usd (notional, USD), price
        (average fill), quantity (coins), exchange, ts (exchange time, ms since the epoch),
        cascade_score (0-10: how strongly a cascade was developing on that market and side) and
        coverage (complete: the venue sends every liquidation; snapshot: a throttled sample,
        e.g. Binance's one per symbol per second; sampled: only watched accounts).
        """
        start = _now_ms() - int(since_minutes * _MINUTE_MS) if since_minutes else None
        async with _server_errors(client.base_url):
            page = await client.history(
                markets=_upper(markets),
                exchanges=exchanges,
                sides=side,
                min_usd=min_usd or None,
                start=start,
                limit=limit,
            )
        events = page.events
        filters = {
            "markets": _upper(markets),
            "exchanges": exchanges,
            "side": side,
            "min_usd": min_usd,
            "since_minutes": since_minutes,
            "limit": limit,
        }
        if not events:
            text = "No liquidations match these filters."
        else:
            total = sum(e.size_usd for e in events)
            text = "\n".join(
                [f"{len(events)} liquidations, {usd(total)} in total, newest first:"]
                + [event_line(e) for e in events]
            )
        return result(
            text,
            {"count": len(events), "events": [e.to_dict() for e in events], "filters": filters},
        )

    async def cascades(
        markets: MarketsArg = None,
        status: Annotated[
            Literal["active", "past", "all", "recent"],
            Field(
                description="'active' = cascades still running, 'past' = finished ones "
                "(exhausted), 'all' = both (default); 'recent' is an older name for 'past'."
            ),
        ] = "all",
        limit: Annotated[
            int, Field(ge=1, le=100, description="At most this many per list (default 10).")
        ] = 10,
    ) -> CallToolResult:
        """Liquidation cascades: bursts of liquidations on one market and side feeding
        each other.

        Each cascade: market, side (liquidated position; 'long' cascades push price down),
        score (0-10 now) and peak_score, window_usd (USD liquidated in the scoring window of
        window_s seconds), total_usd and events since it started, started_at/updated_at (ms
        since the epoch), duration_s, price_move_pct (signed), status (started/updated =
        active, exhausted = over) and a one-line message.
        """
        # One word with the REST API (status=past); 'recent' stays for existing callers.
        asked = "past" if status == "recent" else status
        wanted = ("active", "past") if asked == "all" else (asked,)
        lists: dict[str, list[CascadeAlert]] = {}
        async with _server_errors(client.base_url):
            for name in wanted:
                lists[name] = await client.cascades(
                    status=name,
                    markets=_upper(markets),
                    limit=limit,
                )
        lines: list[str] = []
        for name in wanted:
            found = lists[name]
            lines.append(f"{len(found)} {name} cascade(s)" + (":" if found else "."))
            lines.extend(f"- {alert.message}" for alert in found)
        return result(
            "\n".join(lines),
            {name: [_cascade_dict(a) for a in alerts] for name, alerts in lists.items()},
        )

    async def heatmap_clusters(
        market: MarketArg,
        side: Annotated[
            Literal["long", "short", "both"],
            Field(
                description="'long' = zones where longs would be liquidated (below the "
                "price), 'short' = zones of shorts (above), 'both' (default)."
            ),
        ] = "both",
    ) -> CallToolResult:
        """Where the next liquidations are buried: named price zones ("clusters") dense with
        estimated liquidation prices, from the market's liquidation heatmap.

        Each cluster: side (positions that would be liquidated), low/high (price range), usd
        (notional at risk there if nobody closed or added margin first), label (a sentence).
        The heatmap is a model estimated from open interest, not a fact: usd is estimated
        notional at risk, not expected liquidations (realized ones were about a sixth of it
        when price crossed such zones on Binance BTC). On real data its top zones are rarely
        where the next liquidations happen, and it ranks measured Hyperliquid positions worse
        than "closer to the price holds more" (docs/heatmap.md, "Judged by reality").
        """
        name = market.strip().upper()
        async with (
            _server_errors(client.base_url),
            httpx.AsyncClient(timeout=client.timeout) as http,
        ):
            response = await http.get(
                f"{client.base_url}/v1/heatmap/{name}", headers=client.auth_headers()
            )
        if response.status_code == 404:
            return result(
                f"No heatmap for {name}: the server has none for this market (unknown market, "
                "no open-interest data yet, or heatmaps not served).",
                {"market": name, "available": False, "clusters": []},
            )
        if response.status_code >= 400:
            raise ToolError(
                f"heatmap for {name}: the server answered HTTP {response.status_code}: "
                f"{response.text[:300]}"
            )
        heatmap, found = _heatmap_clusters(response.json())
        if side != "both":
            found = [c for c in found if c.get("side") == side]
        mark = heatmap.get("mark_price")
        lines = [
            f"{name} liquidation clusters"
            + (
                f" (mark price {format_price(float(mark))})"
                if isinstance(mark, int | float)
                else ""
            )
            + (":" if found else ": none found for this side.")
        ]
        for cluster in found:
            label = cluster.get("label") or (
                f"{usd(float(cluster.get('usd', 0)))} of {cluster.get('side')}s between "
                f"{cluster.get('low')} and {cluster.get('high')}"
            )
            lines.append(f"- {label}")
        return result(
            "\n".join(lines),
            {
                "market": name,
                "available": True,
                "mark_price": mark,
                "ts": heatmap.get("ts"),
                "clusters": found,
            },
        )

    async def market_stats(
        market: MarketArg, window_minutes: WindowArg = 60, end_ms: EndArg = None
    ) -> CallToolResult:
        """One market's liquidation totals over a window: USD and event counts of liquidated
        longs and shorts, the total, the dominant side, and the single largest liquidation.

        The window is minute-aligned: [end - window_minutes, end), end rounded up to a minute.
        """
        name = market.strip().upper()
        start, end = _window(window_minutes, end_ms)
        async with _server_errors(client.base_url):
            totals = await side_totals(client, markets=[name], start=start, end=end)
            largest, truncated = await largest_events(
                client, markets=[name], start=start, end=end, count=1
            )
        total_usd = totals["long"]["usd"] + totals["short"]["usd"]
        count = int(totals["long"]["count"] + totals["short"]["count"])
        side = dominant(totals)
        data = {
            "market": name,
            "window_minutes": window_minutes,
            "start_ms": start,
            "end_ms": end,
            "long": {"usd": totals["long"]["usd"], "count": int(totals["long"]["count"])},
            "short": {"usd": totals["short"]["usd"], "count": int(totals["short"]["count"])},
            "total_usd": total_usd,
            "count": count,
            "dominant_side": side,
            "largest": largest[0].to_dict() if largest else None,
            "largest_scan_truncated": truncated,
        }
        if count == 0:
            text = f"{name}: no liquidations in the {window_minutes} min up to {utc(end)}."
        else:
            text = (
                f"{name}, {window_minutes} min up to {utc(end)}: {usd(total_usd)} in {count} "
                f"liquidations; longs {usd(totals['long']['usd'])} "
                f"({int(totals['long']['count'])}), shorts {usd(totals['short']['usd'])} "
                f"({int(totals['short']['count'])}); {side}s dominate."
            )
            if largest:
                text += f" Largest: {event_line(largest[0])}."
        return result(text, data)

    async def market_summary(
        market: Annotated[
            str | None,
            Field(description="A market such as 'BTC-PERP'; omit to summarize every market."),
        ] = None,
        window_minutes: WindowArg = 60,
        end_ms: EndArg = None,
    ) -> CallToolResult:
        """A short plain-language briefing on one market or the whole tape over a window:
        total liquidated (USD), longs vs shorts and which side dominates, the top markets
        (whole tape), active cascades and the three biggest prints."""
        name = market.strip().upper() if market else None
        markets = [name] if name else None
        start, end = _window(window_minutes, end_ms)
        async with _server_errors(client.base_url):
            totals = await side_totals(client, markets=markets, start=start, end=end)
            top_markets: list[dict[str, Any]] = []
            if name is None:
                per_market: dict[str, float] = {}
                for bucket in await client.aggregate(
                    interval="1d", group_by="market", start=start, end=end
                ):
                    per_market[bucket.group] = per_market.get(bucket.group, 0.0) + bucket.size_usd
                top_markets = [
                    {"market": m, "usd": v}
                    for m, v in sorted(per_market.items(), key=lambda item: -item[1])[:5]
                ]
            active = await client.cascades(status="active", markets=markets, limit=5)
            biggest, truncated = await largest_events(
                client, markets=markets, start=start, end=end, count=3
            )
        scope = name or "All markets"
        total_usd = totals["long"]["usd"] + totals["short"]["usd"]
        count = int(totals["long"]["count"] + totals["short"]["count"])
        side = dominant(totals)
        sentences = [f"{scope}, last {window_minutes} min (to {utc(end)}):"]
        if count == 0:
            sentences.append("no liquidations.")
        else:
            share = totals[side or "long"]["usd"] / total_usd if total_usd else 0.0
            sentences.append(
                f"{usd(total_usd)} liquidated in {count} events; longs "
                f"{usd(totals['long']['usd'])}, shorts {usd(totals['short']['usd'])} — "
                f"{side}s dominate ({share:.0%})."
            )
        if top_markets:
            sentences.append(
                "Top markets: "
                + ", ".join(f"{m['market']} {usd(m['usd'])}" for m in top_markets)
                + "."
            )
        if active:
            sentences.append(
                f"{len(active)} active cascade(s): " + " ".join(a.message for a in active)
            )
        else:
            sentences.append("No active cascades.")
        if biggest:
            sentences.append(
                "Biggest prints: "
                + "; ".join(
                    f"{usd(e.size_usd)} {e.side} {e.market} at {format_price(e.price)} "
                    f"({e.exchange}, {utc(e.ts)})"
                    for e in biggest
                )
                + "."
            )
        data = {
            "market": name,
            "window_minutes": window_minutes,
            "start_ms": start,
            "end_ms": end,
            "total_usd": total_usd,
            "count": count,
            "long": {"usd": totals["long"]["usd"], "count": int(totals["long"]["count"])},
            "short": {"usd": totals["short"]["usd"], "count": int(totals["short"]["count"])},
            "dominant_side": side,
            "top_markets": top_markets,
            "active_cascades": [_cascade_dict(a) for a in active],
            "biggest": [e.to_dict() for e in biggest],
            "biggest_scan_truncated": truncated,
        }
        return result(" ".join(sentences), data)

    for tool in (recent_liquidations, cascades, heatmap_clusters, market_stats, market_summary):
        server.add_tool(tool, annotations=read_only)
    return server


def serve(url: str | None, api_key: str | None) -> None:
    """Run the MCP server on stdin/stdout until the host closes it."""
    build_server(LiquidationClient(api_key=api_key, base_url=url)).run("stdio")


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m purpleflea.mcp_server``: the same as ``purpleflea mcp``."""
    from purpleflea.commands.connect import server_url  # noqa: PLC0415
    from purpleflea.commands.mcp import add_arguments  # noqa: PLC0415

    parser = argparse.ArgumentParser(
        prog="purpleflea-mcp", description="MCP server (stdio) over a Purple Flea server."
    )
    add_arguments(parser)
    args = parser.parse_args(argv)
    serve(server_url(args)[0], args.api_key)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
