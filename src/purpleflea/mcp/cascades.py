"""The ``cascades`` tool: liquidation cascades, active and past."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from mcp_types import CallToolResult
from pydantic import BeforeValidator, Field

from purpleflea.client import LiquidationClient
from purpleflea.client.seen import unseen_markets
from purpleflea.mcp import arguments
from purpleflea.mcp.answers import (
    MarketsArg,
    provenance,
    provenance_line,
    result,
    server_errors,
    unseen_text,
    upper,
    venue_coverage,
)
from purpleflea.model import CascadeAlert

StatusArg = Annotated[
    Literal["active", "past", "all", "recent"],
    BeforeValidator(arguments.word),
    Field(
        description="'active' = cascades still running, 'past' = finished ones "
        "(exhausted), 'all' = both (default); 'recent' is an older name for 'past'."
    ),
]
LimitArg = Annotated[
    int, Field(ge=1, le=100, description="At most this many per list (default 10).")
]


def cascade_dict(alert: CascadeAlert) -> dict[str, Any]:
    """An alert as JSON data (``exchanges`` a list, as JSON has no tuples)."""
    return alert.to_dict() | {"exchanges": list(alert.exchanges)}


class CascadeTools:
    """The cascade tools, answering from ``client``'s server."""

    def __init__(self, client: LiquidationClient) -> None:
        self.client = client

    async def cascades(
        self, markets: MarketsArg = None, status: StatusArg = "all", limit: LimitArg = 10
    ) -> CallToolResult:
        """Liquidation cascades: bursts of liquidations on one market and side feeding
        each other.

        Each cascade: market, side (liquidated position; 'long' cascades push price down),
        score (0-10 now) and peak_score, window_usd (USD liquidated in the scoring window of
        window_s seconds), total_usd and events since it started, started_at/updated_at (ms
        since the epoch), duration_s, start_price/last_price and price_move_pct (signed; read
        from the venues that send fill prices when the cascade has any, see provenance.price),
        status (started/updated = active, exhausted = over) and a one-line message.
        truncated says, per list, whether more cascades exist than limit returned.
        """
        # One word with the REST API (status=past); 'recent' stays for existing callers.
        asked = "past" if status == "recent" else status
        wanted = ("active", "past") if asked == "all" else (asked,)
        lists: dict[str, list[CascadeAlert]] = {}
        truncated: dict[str, bool] = {}
        async with server_errors(self.client.base_url):
            for name in wanted:
                # One more than asked tells whether the list was cut at the limit.
                listed = await self.client.cascades(
                    status=name, markets=upper(markets), limit=limit + 1
                )
                lists[name], truncated[name] = listed[:limit], len(listed) > limit
            alerts = [a for found in lists.values() for a in found]
            unseen = [] if alerts else await unseen_markets(self.client, upper(markets))
        # Scores are the cascade engine's model over measured events.
        found = provenance(
            "modelled",
            {e: venue_coverage(e) for a in alerts for e in a.exchanges},
            max((a.updated_at for a in alerts), default=None),
        )
        data: dict[str, Any] = {
            name: [cascade_dict(a) for a in alerts] for name, alerts in lists.items()
        }
        data["truncated"] = truncated
        data["provenance"] = found
        text = _text(lists, truncated)
        if unseen:
            data["unseen_markets"] = unseen
            text += "\n" + unseen_text(unseen)
        return result(f"{text}\n{provenance_line(found)}", data)


def _text(lists: dict[str, list[CascadeAlert]], truncated: dict[str, bool]) -> str:
    lines: list[str] = []
    for name, found in lists.items():
        if truncated[name]:
            lines.append(
                f"The {len(found)} newest {name} cascade(s) (more exist: raise limit, up to "
                "100, or name markets):"
            )
        else:
            lines.append(f"{len(found)} {name} cascade(s)" + (":" if found else "."))
        lines.extend(f"- {alert.message}" for alert in found)
    return "\n".join(lines)
