"""The cascades active now are ranked by score, the strongest first, and a briefing counts all
of them: both took the server's newest-updated first and cut at the limit, so with more active
than the limit a score 9 cascade updated a few seconds earlier was left out for score 3 ones,
and market_summary said "5 active cascade(s)" while the server listed 12."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mcp import Client

from purpleflea.client import LiquidationClient
from purpleflea.mcp.server import build_server
from purpleflea.model import CascadeAlert
from tests.agents.test_mcp import _data, _text
from tests.events import stored_alert
from tests.server.conftest import make_config, running_server

MARKETS = [f"{name}-PERP" for name in "ABCDEFGHIJKL"]


class Listing(LiquidationClient):
    """A client whose server lists ``alerts`` as ``GET /v1/cascades`` does: the latest updated
    first, cut at ``limit`` (a server restarted exhausts stored cascades its engine does not
    hold, so a test cannot store active ones); every other route is the real server's."""

    def __init__(self, alerts: list[CascadeAlert], key: str, url: str) -> None:
        super().__init__(key, url)
        self.alerts = alerts

    async def cascades(
        self,
        *,
        status: str = "all",
        markets: Any = None,
        limit: int = 100,
        market: Any = None,
    ) -> list[CascadeAlert]:
        found = [] if status == "past" else self.alerts
        return sorted(found, key=lambda a: -a.updated_at)[:limit]


async def test_active_cascades_are_the_strongest_and_all_are_counted(
    tmp_path: Path, now: int
) -> None:
    # Twelve active cascades, updated a second apart; the one updated longest ago is the
    # strongest (score 9, $5M in its window), the others score 3.
    alerts = [
        stored_alert(
            i + 1,
            id=f"{market}:long:{now}",
            status="updated",
            market=market,
            score=9 if market == "L-PERP" else 3,
            peak_score=9 if market == "L-PERP" else 3,
            window_usd=5e6 if market == "L-PERP" else 1e5 + i,
            started_at=now - 60_000,
            updated_at=now - 1_000 * i,
            message=f"{market} cascade",
        )
        for i, market in enumerate(MARKETS)
    ]
    async with (
        running_server(make_config(tmp_path)) as live,
        Client(build_server(Listing(alerts, live.key, live.url))) as client,
    ):
        listed = await client.call_tool("cascades", {"status": "active", "limit": 3})
        summary = await client.call_tool("market_summary", {"window_minutes": 5})
    data = _data(listed)
    assert [c["score"] for c in data["active"]] == [9, 3, 3]
    assert data["truncated"] == {"active": True}
    assert data["active_count"] == 12
    assert _text(listed).startswith("The 3 strongest of 12 active cascade(s)")
    data = _data(summary)
    assert data["active_cascade_count"] == 12
    assert data["active_cascades"][0]["market"] == "L-PERP"
    assert len(data["active_cascades"]) == 5
    assert "12 active cascade(s), the 5 strongest: L-PERP cascade" in _text(summary)
