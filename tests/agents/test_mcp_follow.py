"""``purpleflea mcp`` that found its server in the data folder's address record follows a
restart of that server on another port: its host keeps it running across the restart."""

from __future__ import annotations

from pathlib import Path

from purpleflea.local_server import record_address
from purpleflea.mcp.server import RecordFollowingClient
from tests.server.conftest import make_config, running_server


async def test_the_mcp_servers_client_follows_the_record_to_a_new_port(tmp_path: Path) -> None:
    # Every tool call answered "no Purple Flea server answers at <the old port>" after the
    # server restarted on another one, until the MCP host restarted `purpleflea mcp` too.
    config = make_config(tmp_path)
    async with running_server(config) as first:
        record_address(tmp_path, first.url)
        client = RecordFollowingClient(first.key, first.url, tmp_path)
        assert await client.markets() == []
    async with running_server(config) as second:
        assert second.url != first.url
        record_address(tmp_path, second.url)
        assert await client.markets() == []
        assert client.base_url == second.url
    await client.aclose()
