"""What every tool shares: argument types, the answer shape, time windows, error mapping.

Every tool answers with a short text for the model to read and the same data as structured
JSON (``structuredContent``, and as a second text block for hosts that ignore it). Units
everywhere: money in USD, times in ms since the epoch (UTC), windows in minutes.

Every answer states its provenance (:func:`provenance`): whether its figures are measured
(what the venues' feeds sent) or modelled (the cascade engine's scores, the heatmap, the
estimate of what throttled feeds hid), the venues included with each one's coverage and
what its prices are (only ``fill`` prices are the market's: a bankruptcy or order price sits
away from it), and how fresh the newest data behind it is, in seconds.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

import httpx
from mcp.server.mcpserver.exceptions import ToolError
from mcp_types import CallToolResult, TextContent, ToolAnnotations
from pydantic import BeforeValidator, Field, WithJsonSchema

from purpleflea.client import PurpleFleaError, ServerUnreachableError
from purpleflea.client.aio import TIMEOUT_TODO, UNREACHABLE_TODO
from purpleflea.clock import now_ms
from purpleflea.formatting import format_price, format_usd, printable
from purpleflea.mcp import arguments
from purpleflea.model import MARKETS_LISTED, Coverage, Liquidation
from purpleflea.venues import registry

MINUTE_MS = 60_000
YEAR_MINUTES = 525_600

#: Every tool only reads, from a server outside this process.
READ_ONLY = ToolAnnotations(read_only_hint=True, open_world_hint=True)


def also_text(*schemas: dict[str, Any]) -> WithJsonSchema:
    """An argument's input schema: ``schemas`` (its type's, bounds included) or a string. A
    reader in :mod:`~purpleflea.mcp.arguments` takes the string forms the description
    promises ("6h", "$100k", one market name for a list); a host that checks arguments
    against the schema before calling refused them while the schema said only its type."""
    return WithJsonSchema({"anyOf": [*schemas, {"type": "string"}]})


NULL: dict[str, Any] = {"type": "null"}
NAMES: dict[str, Any] = {"type": "array", "items": {"type": "string"}}

MarketsArg = Annotated[
    list[str] | None,
    BeforeValidator(arguments.listed),
    also_text(NAMES, NULL),
    Field(
        description="Only these markets, e.g. ['BTC-PERP', 'ETH-PERP'] (normalized names, "
        "case-insensitive; one name alone is taken too). Omit for every market."
    ),
]
MarketArg = Annotated[
    str,
    Field(min_length=1, description="A normalized market name such as 'BTC-PERP' or 'ETH-PERP'."),
    BeforeValidator(arguments.single),
]
#: A bound goes in the Field before the reading validator: after it, pydantic writes the bound
#: into the input schema under its own name ("ge"), which JSON Schema does not know.
WindowArg = Annotated[
    int,
    Field(
        ge=1,
        le=YEAR_MINUTES,
        description="Length of the window in minutes, ending at end_ms (default 60); a "
        "duration such as '90m', '6h', '2d' is taken too.",
    ),
    BeforeValidator(arguments.minutes),
    also_text({"type": "integer", "minimum": 1, "maximum": YEAR_MINUTES}),
]
EndArg = Annotated[
    int | None,
    BeforeValidator(arguments.end_ms),
    # Strings are taken (the validator turns them into ms): the schema says so, for hosts
    # that check arguments against it before calling.
    also_text({"type": "integer"}, NULL),
    Field(
        description="End of the window: ms since the epoch (UTC), or a UTC date or date and "
        "time ('2025-10-10', '2025-10-10T20:30'), or a time ago ('90m', '6h'), or 'now'. "
        "Omit for now; set it to look at history (e.g. imported recordings)."
    ),
]


def utc(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def price_note(exchange: str) -> str:
    """``"bankruptcy price, "`` before an exchange whose price is no fill, else nothing: a
    venue's bankruptcy or order price sits away from the market, so the text says so where
    the price is read."""
    kind = venue_price(exchange)
    return "" if kind == "fill" else f"{kind} price, "


def event_line(event: Liquidation) -> str:
    return (
        f"{utc(event.ts)} {event.market} {event.side} {format_usd(event.size_usd)} at "
        f"{format_price(event.price)} ({price_note(event.exchange)}{event.exchange}, "
        f"{event.coverage} feed), cascade score {event.cascade_score}/10"
    )


Basis = Literal["measured", "modelled"]


def venue_coverage(exchange: str) -> Coverage:
    """An exchange's coverage; one no venue knows any more is called ``snapshot``, the
    cautious claim (as the stores do)."""
    try:
        return registry.coverage_of(exchange)
    except KeyError:
        return "snapshot"


def venue_price(exchange: str) -> str:
    """What an exchange's ``price`` is (:data:`~purpleflea.venues.venue.PriceKind`);
    ``unknown`` for one no venue knows any more."""
    try:
        return registry.price_kind_of(exchange)
    except KeyError:
        return "unknown"


def provenance(
    basis: Basis,
    venues: dict[str, Coverage],
    newest_ms: int | None,
    *,
    now: int | None = None,
    estimate: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Where an answer's figures come from: ``basis``, the ``venues`` included (exchange ->
    coverage; also grouped by coverage, and by what their ``price`` is: ``fill``,
    ``bankruptcy``, ``order`` or ``liquidation``), ``freshness_s`` (age of the newest data
    behind the answer at ``as_of_ms``; None when there was none) and, for aggregate answers,
    the ``estimate`` (modelled) beside the measured totals."""
    at = now if now is not None else now_ms()
    grouped: dict[str, list[str]] = {}
    priced: dict[str, list[str]] = {}
    for exchange in sorted(venues):
        grouped.setdefault(venues[exchange], []).append(exchange)
        priced.setdefault(venue_price(exchange), []).append(exchange)
    found: dict[str, Any] = {
        "basis": basis,
        "venues": sorted(venues),
        "coverage": grouped,
        "price": priced,
        "freshness_s": None if newest_ms is None else round(max(0, at - newest_ms) / 1000, 1),
        "as_of_ms": at,
    }
    if estimate is not None:
        found["estimate"] = estimate
    return found


def provenance_line(found: dict[str, Any]) -> str:
    """One sentence of :func:`provenance` for the text answer."""
    venues = "; ".join(f"{kind}: {', '.join(names)}" for kind, names in found["coverage"].items())
    fresh = found["freshness_s"]
    age = "no data in the window" if fresh is None else f"newest data {age_text(fresh)} old"
    text = f"Provenance: {found['basis']}"
    if venues:
        text += f", {len(found['venues'])} venue(s) ({venues})"
        off_market = [
            f"{kind}: {', '.join(names)}"
            for kind, names in found.get("price", {}).items()
            if kind != "fill"
        ]
        if off_market:
            text += f"; prices not fills ({'; '.join(off_market)})"
    text += f", {age}."
    estimate = found.get("estimate")
    if estimate and not estimate["est_count"]:
        text += " Estimated with what throttled (snapshot) feeds hid: none either (modelled)."
    elif estimate:
        basis = (
            "modelled: no complete venue to calibrate on, a flat 2x prior"
            if estimate.get("calibration") == "prior_only"
            else "modelled"
        )
        text += (
            f" Estimated with what throttled (snapshot) feeds hid: "
            f"{format_usd(estimate['est_usd'])} in ~{estimate['est_count']:,} liquidations "
            f"({basis})."
        )
    return text


def visible(value: Any) -> Any:
    """``value`` (JSON data) with every string's characters that are not printable written as
    escapes (:func:`~purpleflea.formatting.printable`). A store written before ingest and
    import checked names may hold a market of Unicode tag characters: text a person does not
    see and a model reads as instructions."""
    if isinstance(value, str):
        return printable(value)
    if isinstance(value, dict):
        return {visible(k): visible(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [visible(v) for v in value]
    return value


def result(text: str, data: dict[str, Any]) -> CallToolResult:
    """The tool answer: concise text, then the structured JSON (also as text, per the spec);
    both :func:`visible` (the text's own line breaks kept)."""
    text = "\n".join(printable(line) for line in text.split("\n"))
    data = visible(data)
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


def age_text(seconds: float) -> str:
    """An age as read: ``4.2 s``, ``17 min``, ``5.3 h``, ``344.6 days``. A window of imported
    history ends months ago, and ``%g`` had written that age as ``2.97757e+07 s``."""
    if seconds < 120:
        return f"{seconds:g} s"
    if seconds < 2 * 3600:
        return f"{seconds / 60:.0f} min"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:,.1f} days"


def span(minutes: int) -> str:
    """A window's length as read: ``60 min``, ``6 h``, ``365 d`` (``525600 min`` was a
    figure to work out). Whole hours from 2 h, whole days from 2 d; else the unit below."""
    if minutes >= 2 * 1440 and minutes % 1440 == 0:
        return f"{minutes // 1440} d"
    if minutes >= 2 * 60 and minutes % 60 == 0:
        return f"{minutes // 60} h"
    return f"{minutes} min"


def upper(values: Sequence[str] | None) -> list[str] | None:
    """Market names as the server spells them."""
    return [v.strip().upper() for v in values] if values else None


#: What the person who set up the MCP server must do when it was started without a key (no
#: request was made: the server did not refuse anything).
NO_KEY = (
    "no API key: this MCP server was started without one. Whoever configured it must pass "
    "--api-key KEY to `purpleflea mcp` or set PURPLEFLEA_API_KEY in the MCP host's env for "
    "it (get a key with `purpleflea keys create --account you` or POST /v1/keys)"
)


#: What to do when the server is not reachable, said to whoever set this MCP server up: it
#: reads PURPLEFLEA_URL, but from the environment its host starts it with (docs/agents.md).
UNREACHABLE = (
    "start one with `purpleflea serve`; if it runs elsewhere, whoever configured this MCP "
    "server must pass --url URL to `purpleflea mcp` or set PURPLEFLEA_URL in the MCP host's env "
    "for it (a variable set in their shell does not reach it)"
)
#: What an agent can do when the server did not answer in time: the SDK's advice names its
#: ``timeout=`` argument, which neither the agent nor ``purpleflea mcp`` has.
SLOW = (
    "it may be overloaded or the question large: retry in a moment, or ask for less "
    "(a shorter window_minutes, a lower limit)"
)
#: Where an agent finds market names: it has no REST route to call, only these tools.
MARKETS_NAMED = (
    "market_summary without a market names the most liquidated markets, "
    "recent_liquidations the markets of the latest events"
)


@asynccontextmanager
async def server_errors(base_url: str) -> AsyncIterator[None]:
    """Server and network failures become tool errors the agent can read; what the SDK or
    server tells a program to do (set PURPLEFLEA_URL, GET /v1/markets) is said as this MCP
    server's user and its agent can do it."""
    try:
        yield
    except ServerUnreachableError as exc:  # its message names the server and what to do
        text = str(exc).replace(UNREACHABLE_TODO, UNREACHABLE).replace(TIMEOUT_TODO, SLOW)
        raise ToolError(f"cannot reach the Purple Flea server: {text}") from exc
    except PurpleFleaError as exc:
        if exc.code == "missing_api_key":  # the SDK's wording names its Python argument
            raise ToolError(NO_KEY) from exc
        text = str(exc).replace(MARKETS_LISTED, MARKETS_NAMED)
        raise ToolError(f"Purple Flea server refused: {text} ({exc.code})") from exc
    except httpx.HTTPError as exc:
        raise ToolError(f"cannot reach the Purple Flea server at {base_url}: {exc!r}") from exc


def never_seen(market: str) -> str:
    """What a window of a market no stored event names says instead of "no liquidations":
    the sentence :func:`unseen_text` adds to an empty list."""
    return f"no liquidations. {unseen_text([market])}"


def unseen_text(markets: list[str]) -> str:
    """The sentence an empty answer adds for markets no stored event names."""
    names = ", ".join(markets)
    return (
        f"No liquidation of {names} is stored at all, in any window (a typo? market_summary "
        "without a market names the most liquidated markets)."
    )


def not_recorded(end: int) -> str:
    """What a window before the stored history says instead of "no liquidations", which read as
    a calm market: an agent asking about a crash before the tracker ran was told nothing
    happened."""
    return (
        f"no liquidations: nothing of any market is stored before {utc(end)}, so this window "
        "is before the tracker's stored history (the tracker was not recording then; "
        "`purpleflea import` adds recorded history), not a calm one."
    )
