"""The tools' input schemas are JSON Schema a host can check arguments against: pydantic wrote
a bound declared after a reading validator as its own keyword (``"ge": 0``), which JSON Schema
does not know, so hosts and models saw no bound on ``min_usd``, ``since_minutes`` or
``window_minutes``."""

from __future__ import annotations

from typing import Any

import jsonschema
import pytest
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
    # The number's branch of each (the other takes the text forms, "$100k", "6h").
    assert recent["min_usd"]["anyOf"][0]["minimum"] == 0
    since = recent["since_minutes"]["anyOf"][0]
    assert (since["exclusiveMinimum"], since["maximum"]) == (0, 525_600)
    window = tools["market_stats"]["properties"]["window_minutes"]["anyOf"][0]
    assert (window["minimum"], window["maximum"]) == (1, 525_600)


#: What each tool's description says it takes beyond its type, as a model reads it there.
DESCRIBED = {
    "recent_liquidations": [
        {"markets": "BTC-PERP"},  # "one name alone is taken too"
        {"exchanges": "bybit"},
        {"side": "both"},  # "omit (or 'both') for both"
        {"min_usd": "$100k"},  # "'$100k' is taken too"
        {"since_minutes": "90m"},  # "a duration such as '90m', '6h' is taken too"
        {"end_ms": "2025-10-10T20:30"},
    ],
    "cascades": [{"markets": "BTC-PERP"}],
    "market_stats": [{"market": "BTC-PERP", "window_minutes": "6h", "end_ms": "90m"}],
    "market_summary": [{"window_minutes": "2d"}, {"market": "all"}],
}


async def test_what_a_description_says_is_taken_passes_the_input_schema() -> None:
    # A host that checks arguments against inputSchema before calling (as the MCP spec lets
    # it) refused "6h", "$100k" or a lone market name that the description invites and the
    # tool takes: the schema said only integer / number / array / 'long' or 'short'.
    server = build_server(LiquidationClient("pf_unused", "http://127.0.0.1:9"))
    async with Client(server) as client:
        tools = {tool.name: tool.input_schema for tool in (await client.list_tools()).tools}
    for name, calls in DESCRIBED.items():
        for arguments in calls:
            jsonschema.validate(arguments, tools[name])
    # The bounds still stand for numbers, where a host can check them.
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"limit": 1000}, tools["recent_liquidations"])
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"market": "BTC-PERP", "window_minutes": 0}, tools["market_stats"])
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"min_usd": -1}, tools["recent_liquidations"])
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"side": "buy"}, tools["recent_liquidations"])
