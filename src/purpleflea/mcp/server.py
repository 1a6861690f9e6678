"""The MCP server: the tool groups on one :class:`MCPServer`, served on stdin/stdout.

An MCP host (Claude Desktop, an agent framework) launches ``purpleflea mcp`` and talks over
stdin/stdout. Tools never invent data: an empty window says so, a market without a heatmap
says so. ``side`` is always the side of the *liquidated position*: ``long`` means longs were
force-sold.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.mcpserver.tools import Tool
from pydantic import ConfigDict, ValidationError

from purpleflea import __version__
from purpleflea.client import LiquidationClient
from purpleflea.local_server import find_address
from purpleflea.mcp.answers import READ_ONLY
from purpleflea.mcp.cascades import CascadeTools
from purpleflea.mcp.heatmaps import HeatmapTools
from purpleflea.mcp.liquidations import LiquidationTools
from purpleflea.mcp.markets import MarketTools

INSTRUCTIONS = (
    "Purple Flea liquidation tracker: forced liquidations across crypto perpetual-futures "
    "exchanges, normalized. Markets are named like BTC-PERP, ETH-PERP (same name on every "
    "exchange). side = the liquidated position: 'long' = longs were liquidated (forced sells, "
    "downside pressure), 'short' = shorts were liquidated (forced buys). Money is USD; times "
    "are ms since the epoch (UTC). Start with market_summary for an overview, cascades for "
    "what is unfolding now, heatmap_clusters for where the next liquidations sit."
)


class StrictTool(Tool):
    """A tool whose argument errors read as one line per argument: what was wrong, the value
    sent and, for an argument it does not take, the ones it takes; pydantic's own report
    adds a documentation URL and its type names to each, which a model has to read past."""

    async def run(
        self, arguments: dict[str, Any], context: Any, convert_result: bool = False
    ) -> Any:
        try:
            return await super().run(arguments, context, convert_result)
        except ToolError as exc:
            if not isinstance(exc.__cause__, ValidationError):
                raise
            raise ToolError(self._bad_arguments(exc.__cause__)) from exc.__cause__

    def _bad_arguments(self, error: ValidationError) -> str:
        takes = ", ".join(self.parameters.get("properties", {}))
        lines = []
        for problem in error.errors():
            name = ".".join(str(part) for part in problem["loc"]) or "arguments"
            if problem["type"] == "extra_forbidden":
                lines.append(f"{name}: not permitted: {self.name} takes {takes}")
            elif problem["type"] == "missing":
                lines.append(f"{name}: required")
            else:
                message = problem["msg"].removeprefix("Value error, ")
                lines.append(f"{name}: {message} (got {problem['input']!r})")
        return f"{self.name}: bad arguments: " + "; ".join(lines)


def strict_tool(fn: Callable[..., Any]) -> Tool:
    """A read-only tool that refuses an argument it does not take (a tool error naming it)
    and says so in its input schema (``additionalProperties: false``). The MCP SDK drops such
    an argument silently: ``recent_liquidations`` given ``market`` (for ``markets``) answered
    every market's events, as if no filter were given."""
    loose = Tool.from_function(fn, annotations=READ_ONLY)
    tool = StrictTool.model_construct(**{name: getattr(loose, name) for name in Tool.model_fields})
    arg_model = tool.fn_metadata.arg_model
    config = ConfigDict(**{**arg_model.model_config, "extra": "forbid"})
    tool.fn_metadata.arg_model = type(arg_model.__name__, (arg_model,), {"model_config": config})
    tool.parameters["additionalProperties"] = False
    return tool


def build_server(client: LiquidationClient) -> MCPServer:
    """The MCP server with its five tools, answering from ``client``'s Purple Flea server."""
    liquidations = LiquidationTools(client)
    cascades = CascadeTools(client)
    heatmaps = HeatmapTools(client)
    markets = MarketTools(client)
    tools = [
        strict_tool(fn)
        for fn in (
            liquidations.recent_liquidations,
            cascades.cascades,
            heatmaps.heatmap_clusters,
            markets.market_stats,
            markets.market_summary,
        )
    ]
    # The version is the host's only way to tell which tools' behaviour it is talking to.
    return MCPServer("purpleflea", version=__version__, instructions=INSTRUCTIONS, tools=tools)


class RecordFollowingClient(LiquidationClient):
    """A client of the server recorded in ``data_dir`` (``server.json``) that reads the record
    again before each request: a server restarted on another port (``serve --port 0`` takes a
    new one each time) is found there, where the MCP server, which its host keeps running,
    answered every tool call with "no Purple Flea server answers" until restarted itself.
    ``url`` None: no server is recorded yet (the SDK's default until one is)."""

    def __init__(self, api_key: str | None, url: str | None, data_dir: Path) -> None:
        super().__init__(api_key=api_key, base_url=url)
        self._data_dir = data_dir

    async def _get(self, path: str, params: dict[str, Any]) -> bytes:
        found = find_address(self._data_dir)
        if found is not None and found.rstrip("/") != self.base_url:
            self.servers, self._current = (found.rstrip("/"),), 0
        return await super()._get(path, params)


def serve(url: str | None, api_key: str | None, *, recorded_in: Path | None = None) -> None:
    """Run the MCP server on stdin/stdout until the host closes it; ``recorded_in``: ``url``
    came from that data folder's address record (None: none was recorded yet), which each
    request then follows."""
    client = (
        LiquidationClient(api_key=api_key, base_url=url)
        if recorded_in is None
        else RecordFollowingClient(api_key, url, recorded_in)
    )
    build_server(client).run("stdio")
