"""The ``heatmap_clusters`` tool: where the next liquidations are estimated to sit."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import httpx
from mcp.server.mcpserver.exceptions import ToolError
from mcp_types import CallToolResult
from pydantic import Field

from purpleflea.client import LiquidationClient
from purpleflea.formatting import format_price, format_usd
from purpleflea.mcp.answers import MarketArg, provenance, provenance_line, result, server_errors

SideArg = Annotated[
    Literal["long", "short", "both"],
    Field(
        description="'long' = zones where longs would be liquidated (below the "
        "price), 'short' = zones of shorts (above), 'both' (default)."
    ),
]


def clusters_of(body: Any) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The heatmap object and its clusters, whether or not the route wraps it."""
    heatmap = body.get("heatmap", body) if isinstance(body, dict) else None
    if not isinstance(heatmap, dict) or not isinstance(heatmap.get("clusters"), list):
        raise ToolError("the server's heatmap answer has no 'clusters' list")
    return heatmap, [c for c in heatmap["clusters"] if isinstance(c, dict)]


class HeatmapTools:
    """The heatmap tools, answering from ``client``'s server."""

    def __init__(self, client: LiquidationClient) -> None:
        self.client = client

    async def heatmap_clusters(self, market: MarketArg, side: SideArg = "both") -> CallToolResult:
        """Where the next liquidations are buried: named price zones ("clusters") dense with
        estimated liquidation prices, from the market's liquidation heatmap.

        Each cluster: side (positions that would be liquidated), low/high (price range)
        (notional at risk there if nobody closed or added margin first), label (a sentence).
        The heatmap is a model estimated from open interest, not a fact: usd is estimated
        notional at risk, not expected liquidations (realized ones were about a sixth of it
        when price crossed such zones on Binance BTC). On real data its top zones are rarely
        where the next liquidations happen, and it ranks measured Hyperliquid positions worse
        than "closer to the price holds more" (docs/heatmap.md, "Judged by reality").
        """
        name = market.strip().upper()
        response = await self._fetch(name)
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
        heatmap, found = clusters_of(response.json())
        if side != "both":
            found = [c for c in found if c.get("side") == side]
        ts = heatmap.get("ts")
        # The map is estimated from open interest: a model, whichever venues fed it.
        origin = provenance("modelled", {}, int(ts) if isinstance(ts, int | float) else None)
        data = {
            "market": name,
            "available": True,
            "mark_price": heatmap.get("mark_price"),
            "ts": ts,
            "clusters": found,
            "provenance": origin,
        }
        text = _text(name, heatmap.get("mark_price"), found)
        return result(f"{text}\n{provenance_line(origin)}", data)

    async def _fetch(self, market: str) -> httpx.Response:
        client = self.client
        async with (
            server_errors(client.base_url),
            httpx.AsyncClient(timeout=client.timeout) as http,
        ):
            return await http.get(
                f"{client.base_url}/v1/heatmap/{market}", headers=client.auth_headers()
            )


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
