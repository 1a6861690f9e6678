"""The tools' input schemas are JSON Schema a host can check arguments against: pydantic wrote
a bound declared after a reading validator as its own keyword (``"ge": 0``), which JSON Schema
does not know, so hosts and models saw no bound on ``min_usd``, ``since_minutes`` or
``window_minutes``."""

from __future__ import annotations

from typing import Any

from mcp import Client

from purpleflea import __version__
from purpleflea.client import LiquidationClient
from purpleflea.mcp.server import build_server

#: pydantic's names for bounds; JSON Schema's are minimum, maximum, exclusiveMinimum, ...
PYDANTIC_BOUNDS = {"ge", "gt", "le", "lt", "min_length", "max_length"}


def _keywords(schema: Any) -> set[str]:
    """Every keyword used anywhere in ``schema`` (property names excluded)."""
    if isinstance(schema, list):
        return {key for item in schema for key in _keywords(item)}
    if not isinstance(schema, dict):
        return set()
    found = set(schema) - {"properties"}
    for key, value in schema.items():
        if key == "properties":
            found |= {k for prop in value.values() for k in _keywords(prop)}
        else:
            found |= _keywords(value)
    return found


async def test_bounds_are_json_schema_keywords_and_the_server_says_its_version() -> None:
    server = build_server(LiquidationClient("pf_unused", "http://127.0.0.1:9"))
    async with Client(server) as client:
        tools = {tool.name: tool.input_schema for tool in (await client.list_tools()).tools}
        info = client.server_info
    # initialize answered serverInfo.version "": a host could not tell one release from another.
    assert info is not None
    assert (info.name, info.version) == ("purpleflea", __version__)
    for name, schema in tools.items():
        assert not _keywords(schema) & PYDANTIC_BOUNDS, (name, schema)
    recent = tools["recent_liquidations"]["properties"]
    assert recent["min_usd"]["minimum"] == 0
    since = recent["since_minutes"]["anyOf"][0]
    assert (since["exclusiveMinimum"], since["maximum"]) == (0, 525_600)
    window = tools["market_stats"]["properties"]["window_minutes"]
    assert (window["minimum"], window["maximum"]) == (1, 525_600)
