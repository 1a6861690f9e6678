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


#: Active cascades read to rank them (the route's largest page): the server lists the latest
#: updated first, which says nothing of strength (every active one is updated within seconds).
ACTIVE_READ = 1000


async def strongest_active(
    client: LiquidationClient, markets: list[str] | None, limit: int
) -> tuple[list[CascadeAlert], int]:
    """The ``limit`` strongest active cascades (score, then USD in the window, then the latest
    updated) and how many are active (of the :data:`ACTIVE_READ` latest updated). Cut at the
    limit by the server, a score 9 cascade updated a few seconds before score 3 ones was left
    out, and a briefing counted only the ones it listed."""
    listed = await client.cascades(status="active", markets=markets, limit=ACTIVE_READ)
    ranked = sorted(listed, key=lambda a: (-a.score, -a.window_usd, -a.updated_at))
    return ranked[:limit], len(listed)


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
        Active ones come strongest first (score, then window_usd), with active_count, how many
        are active; past ones newest first. truncated says, per list, whether more cascades
        exist than limit returned.
        """
        # One word with the REST API (status=past); 'recent' stays for existing callers.
        asked = "past" if status == "recent" else status
        wanted = ("active", "past") if asked == "all" else (asked,)
        lists: dict[str, list[CascadeAlert]] = {}
        truncated: dict[str, bool] = {}
        active_count = 0
        async with server_errors(self.client.base_url):
            for name in wanted:
                if name == "active":
                    lists[name], active_count = await strongest_active(
                        self.client, upper(markets), limit
                    )
                    truncated[name] = active_count > limit
                    continue
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
        if "active" in lists:
            data["active_count"] = active_count
        data["provenance"] = found
        text = _text(lists, truncated, active_count)
        if unseen:
            data["unseen_markets"] = unseen
            text += "\n" + unseen_text(unseen)
        return result(f"{text}\n{provenance_line(found)}", data)


def _text(
    lists: dict[str, list[CascadeAlert]], truncated: dict[str, bool], active_count: int
) -> str:
    lines: list[str] = []
    for name, found in lists.items():
        if truncated[name] and name == "active":
            lines.append(
                f"The {len(found)} strongest of {active_count:,} active cascade(s) (by score; "
                "raise limit, up to 100, or name markets, for more):"
            )
        elif truncated[name]:
            lines.append(
                f"The {len(found)} newest {name} cascade(s) (more exist: raise limit, up to "
                "100, or name markets):"
            )
        else:
            lines.append(f"{len(found)} {name} cascade(s)" + (":" if found else "."))
        lines.extend(f"- {alert.message}" for alert in found)
    return "\n".join(lines)
