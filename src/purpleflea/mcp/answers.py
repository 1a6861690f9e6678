"""What every tool shares: argument types, the answer shape, time windows, error mapping.

Every tool answers with a short text for the model to read and the same data as structured
JSON (``structuredContent``, and as a second text block for hosts that ignore it). Units
everywhere: money in USD, times in ms since the epoch (UTC), windows in minutes.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Annotated, Any

import httpx
from mcp.server.mcpserver.exceptions import ToolError
from mcp_types import CallToolResult, TextContent, ToolAnnotations
from pydantic import Field

from purpleflea.client import PurpleFleaError
from purpleflea.clock import now_ms
from purpleflea.formatting import format_price, format_usd
from purpleflea.model import Liquidation

MINUTE_MS = 60_000
YEAR_MINUTES = 525_600

#: Every tool only reads, from a server outside this process.
READ_ONLY = ToolAnnotations(read_only_hint=True, open_world_hint=True)

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
        le=YEAR_MINUTES,
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


def utc(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def event_line(event: Liquidation) -> str:
    return (
        f"{utc(event.ts)} {event.market} {event.side} {format_usd(event.size_usd)} at "
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


def window(window_minutes: int, end_ms: int | None) -> tuple[int, int]:
    """Minute-aligned [start, end): aggregates then read per-minute rollups."""
    end = end_ms if end_ms is not None else now_ms()
    end = -(-end // MINUTE_MS) * MINUTE_MS
    return end - window_minutes * MINUTE_MS, end


def upper(values: Sequence[str] | None) -> list[str] | None:
    """Market names as the server spells them."""
    return [v.strip().upper() for v in values] if values else None


@asynccontextmanager
async def server_errors(base_url: str) -> AsyncIterator[None]:
    """Server and network failures become tool errors the agent can read."""
    try:
        yield
    except PurpleFleaError as exc:
        raise ToolError(f"Purple Flea server refused: {exc} ({exc.code})") from exc
    except httpx.HTTPError as exc:
        raise ToolError(f"cannot reach the Purple Flea server at {base_url}: {exc!r}") from exc
