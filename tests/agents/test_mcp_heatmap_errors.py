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


async def test_no_heatmap_says_the_servers_reason() -> None:
    # The server tells a typo (no event of the market ever) from a market awaiting its first
    # open-interest snapshot, and names markets that have one; the tool said only "unknown
    # market, no open-interest data yet, or heatmaps not served", whichever it was.
    reason = (
        "no heatmap for 'NOPE-PERP': the tracker has seen no liquidation and no open-interest "
        "snapshot of it (a typo? 275 markets have a heatmap: 1INCH-PERP, AAVE-PERP, ...)"
    )
    answer = await _tools(PurpleFleaError(reason, "not_found", 404)).heatmap_clusters("nope-perp")
    assert not answer.is_error
    text = answer.content[0].text  # type: ignore[union-attr]
    # Said once: it was "No heatmap for NOPE-PERP: no heatmap for 'NOPE-PERP': ...".
    assert text == "N" + reason[1:]
    assert answer.structured_content is not None
    assert answer.structured_content["available"] is False
    assert answer.structured_content["reason"] == reason


async def test_a_reason_that_does_not_name_the_market_is_prefixed_with_it() -> None:
    answer = await _tools(PurpleFleaError("", "not_found", 404)).heatmap_clusters("nope-perp")
    text = answer.content[0].text  # type: ignore[union-attr]
    assert text == "No heatmap for NOPE-PERP: the server has none for this market"
