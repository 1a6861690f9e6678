"""heatmap_clusters' measured map is null only when the server has none (404): a refusal for
another reason (the account's rate limit, a server error) read as "this market is not
sampled", a fact the tool never had."""

from __future__ import annotations

from typing import Any, cast

import pytest
from mcp.server.mcpserver.exceptions import ToolError

from purpleflea.client import LiquidationClient, PurpleFleaError, RateLimitError
from purpleflea.mcp.heatmaps import HeatmapTools


class MeasuredRefused:
    """A client whose measured-map request is refused with ``error``."""

    base_url = "http://127.0.0.1:9"

    def __init__(self, error: PurpleFleaError) -> None:
        self.error = error

    async def heatmap(self, market: str, **_: Any) -> Any:
        raise self.error


def _tools(error: PurpleFleaError) -> HeatmapTools:
    return HeatmapTools(cast(LiquidationClient, MeasuredRefused(error)))


async def test_no_measured_map_is_null_and_a_refusal_is_said() -> None:
    missing = PurpleFleaError("no measured heatmap for BTC-PERP", "not_found", 404)
    assert await _tools(missing)._measured("BTC-PERP") is None
    limited = RateLimitError("rate limit of 10 requests/s (burst 40) exceeded", 0.25)
    with pytest.raises(ToolError, match=r"refused: rate limit of 10 requests/s .*\(rate_limited\)"):
        await _tools(limited)._measured("BTC-PERP")
