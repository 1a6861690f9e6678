"""recent_liquidations pages back through more events than ``limit``: its answer's
``next_cursor``, sent back as ``cursor``, gives the next older page of the same question. An
agent had only ``truncated: true`` and "raise limit (up to 100)"; paging back with ``end_ms``
set to the oldest event's time skipped the events of that same millisecond not yet shown."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mcp import Client

from purpleflea.client import LiquidationClient
from purpleflea.mcp.server import build_server
from tests.agents.test_mcp import _data, _text
from tests.server.conftest import make_config, running_server, venue_event


async def test_next_cursor_pages_back_through_every_event_once(tmp_path: Path, now: int) -> None:
    start = now - 10 * 60_000
    # Three events a millisecond: pages end inside a millisecond.
    events = [
        venue_event(size_usd=1_000.0 + i, price=60_000.0 - i, ts=start + 1_000 * (i // 3))
        for i in range(50)
    ]
    config = make_config(tmp_path, rate_burst=500.0, rate_per_s=500.0)
    async with running_server(config) as live:
        await live.push(*events)
        async with Client(build_server(LiquidationClient(live.key, live.url))) as client:
            pages: list[dict[str, Any]] = []
            args: dict[str, Any] = {"markets": "BTC-PERP", "limit": 20}
            first = await client.call_tool("recent_liquidations", args)
            pages.append(_data(first))
            while pages[-1]["next_cursor"] is not None:
                more = {**args, "cursor": pages[-1]["next_cursor"]}
                pages.append(_data(await client.call_tool("recent_liquidations", more)))
            bad = await client.call_tool("recent_liquidations", {**args, "cursor": "yesterday"})
    assert [page["count"] for page in pages] == [20, 20, 10]
    assert [page["truncated"] for page in pages] == [True, True, False]
    assert f"cursor '{pages[0]['next_cursor']}'" in _text(first)
    shown = [e["id"] for page in pages for e in page["events"]]
    assert sorted(shown) == sorted(e.id for e in events)  # each once, none skipped
    assert [e["ts"] for page in pages for e in page["events"]] == sorted(
        (e.ts for e in events), reverse=True
    )
    assert pages[1]["filters"]["cursor"] == pages[0]["next_cursor"]
    assert bad.is_error
    assert "cursor" in _text(bad)
