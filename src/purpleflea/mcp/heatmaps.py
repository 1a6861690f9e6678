"""The ``heatmap_clusters`` tool: where the next liquidations are estimated to sit, and beside
the estimate the measured map (sampled accounts' own liquidation prices) where the server
samples the market's venue, with its source and coverage."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from mcp.server.mcpserver.exceptions import ToolError
from mcp_types import CallToolResult
from pydantic import BeforeValidator, Field

from purpleflea.client import LiquidationClient, PurpleFleaError
from purpleflea.formatting import format_price, format_usd
from purpleflea.mcp import arguments
from purpleflea.mcp.answers import MarketArg, provenance, provenance_line, result, server_errors

SideArg = Annotated[
    Literal["long", "short", "both"],
    BeforeValidator(arguments.word),
    Field(
        description="'long' = zones where longs would be liquidated (below the "
        "price), 'short' = zones of shorts (above), 'both' (default)."
    ),
]


def clusters_of(body: Any) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The heatmap object and its clusters, whether or not the route wraps it."""
    heatmap = body.get("heatmap", body) if isinstance(body, dict) else None
    if not isinstance(heatmap, dict) or not isinstance(heatmap.get("clusters"), list | tuple):
        raise ToolError("the server's heatmap answer has no 'clusters' list")
    return heatmap, [c for c in heatmap["clusters"] if isinstance(c, dict)]


class HeatmapTools:
    """The heatmap tools, answering from ``client``'s server."""

    def __init__(self, client: LiquidationClient) -> None:
        self.client = client

    async def heatmap_clusters(self, market: MarketArg, side: SideArg = "both") -> CallToolResult:
        """Where the next liquidations are buried: named price zones ("clusters") dense with
        estimated liquidation prices, from the market's liquidation heatmap.

        Each cluster: side (positions that would be liquidated), low/high (price range), usd
        (notional at risk there if nobody closed or added margin first), label (a sentence).
        Beside it, where the server samples account positions (``measured``, else null): the
        map summed from sampled accounts' own liquidation prices, with its coverage (sampled
        notional / both sides of open interest), the accounts sampled and its largest buckets
        per side; exact for those accounts, silent about the rest.
        The heatmap is a model estimated from open interest, not a fact: usd is estimated
        notional at risk, not expected liquidations (realized ones were about a sixth of it
        when price crossed such zones on Binance BTC). On real data its top zones are rarely
        where the next liquidations happen, and it ranks measured Hyperliquid positions worse
        than "closer to the price holds more" (docs/heatmap.md, "Judged by reality").
        """
        name = market.strip().upper()
        async with server_errors(self.client.base_url):
            try:
                estimated = await self.client.heatmap(name)
            except PurpleFleaError as exc:
                if exc.status != 404:
                    raise
                # The server's reason tells a typo (and names markets that have a heatmap)
                # from a market still awaiting its first open-interest snapshot.
                reason = str(exc) or "the server has none for this market"
                # The server's reason names the market itself ("no heatmap for 'X': ..."):
                # prefixed again, the answer said it twice.
                said = reason.lower().startswith("no heatmap for ")
                return result(
                    reason[0].upper() + reason[1:] if said else f"No heatmap for {name}: {reason}",
                    {"market": name, "available": False, "reason": reason, "clusters": []},
                )
        heatmap, found = clusters_of(msgspec.to_builtins(estimated))
        if side != "both":
            found = [c for c in found if c.get("side") == side]
        ts = heatmap.get("ts")
        # The map is estimated from open interest: a model, whichever venues fed it.
        origin = provenance("modelled", {}, int(ts) if isinstance(ts, int | float) else None)
        measured = await self._measured(name)
        data = {
            "market": name,
            "available": True,
            "source": heatmap.get("source", "estimated"),
            "mark_price": heatmap.get("mark_price"),
            "ts": ts,
            "clusters": found,
            "provenance": origin,
            "measured": measured,
        }
        text = _text(name, heatmap.get("mark_price"), found)
        if measured is not None:
            text += "\n" + _measured_text(measured, side)
        return result(f"{text}\n{provenance_line(origin)}", data)

    async def _measured(self, market: str) -> dict[str, Any] | None:
        """The measured map's summary, or None when the server measures none for ``market``
        (404: sampling off, or no venue of this market sampled yet). Any other refusal is the
        tool's error: None would claim the market is not sampled."""
        async with server_errors(self.client.base_url):
            try:
                measured = await self.client.heatmap(market, source="measured")
            except PurpleFleaError as exc:
                if exc.status != 404:
                    raise
                return None
        body = msgspec.to_builtins(measured)
        prices = body.get("prices") or []
        return {
            "source": body.get("source", "measured"),
            "coverage": body.get("coverage"),
            "coverage_uncapped": body.get("coverage_uncapped"),
            "accounts": body.get("accounts"),
            "positions": body.get("positions"),
            "sampled_usd": body.get("sampled_usd"),
            "open_interest_usd": body.get("open_interest_usd"),
            "bucket_size": body.get("bucket_size"),
            "ts": body.get("ts"),
            "largest": {
                side: _largest(prices, body.get(f"{side}_usd") or []) for side in ("long", "short")
            },
        }


def _largest(prices: list[Any], usd: list[Any], count: int = 3) -> list[dict[str, float]]:
    """The ``count`` buckets holding the most notional (price = the bucket's low edge)."""
    pairs = [
        (float(u), float(p))
        for p, u in zip(prices, usd, strict=False)
        if isinstance(u, int | float) and u > 0 and isinstance(p, int | float)
    ]
    return [{"price": p, "usd": u} for u, p in sorted(pairs, reverse=True)[:count]]


def _measured_text(measured: dict[str, Any], side: str) -> str:
    coverage = measured.get("coverage")
    share = f"{100 * float(coverage):.1f}%" if isinstance(coverage, int | float) else "?"
    line = (
        f"Measured (sampled accounts' own liquidation prices, coverage {share} of open "
        f"interest, {measured.get('accounts')} accounts):"
    )
    parts = []
    for name in ("long", "short") if side == "both" else (side,):
        top = measured["largest"][name]
        if top:
            parts.append(
                f"most {name} notional at {format_price(top[0]['price'])} "
                f"({format_usd(top[0]['usd'])})"
            )
    return line + (" " + "; ".join(parts) + "." if parts else " no positions in range.")


def _text(market: str, mark: object, clusters: list[dict[str, Any]]) -> str:
    head = f"{market} liquidation clusters"
    if isinstance(mark, int | float):
        head += f" (mark price {format_price(float(mark))})"
    lines = [head + (":" if clusters else ": none found for this side.")]
    for cluster in clusters:
        label = cluster.get("label") or (
            f"{format_usd(float(cluster.get('usd', 0)))} of {cluster.get('side')}s between "
            f"{cluster.get('low')} and {cluster.get('high')}"
        )
        lines.append(f"- {label}")
    return "\n".join(lines)
