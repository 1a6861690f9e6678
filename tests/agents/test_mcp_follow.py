"""``purpleflea mcp`` that found its server in the data folder's address record follows a
restart of that server on another port: its host keeps it running across the restart."""

from __future__ import annotations

from pathlib import Path

import pytest

from purpleflea import cli
from purpleflea.client import LiquidationClient
from purpleflea.commands import mcp as mcp_command
from purpleflea.local_server import record_address
from purpleflea.mcp import server as mcp_server
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


async def test_mcp_started_before_its_server_finds_it_once_recorded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # An MCP host launches `purpleflea mcp` when it starts, often before `purpleflea serve`:
    # no address was recorded yet, the command kept the default http://127.0.0.1:8000 and
    # never read the record again, so a server started then on another port (--port 0, or
    # any but 8000) was never found: every tool call said no server answers, until the host
    # restarted the command (docs/agents.md says the record is read before each request).
    monkeypatch.delenv("PURPLEFLEA_URL", raising=False)
    made: list[LiquidationClient] = []

    class Built:
        def run(self, transport: str) -> None:
            del transport

    def build(client: LiquidationClient) -> Built:
        made.append(client)
        return Built()

    monkeypatch.setattr(mcp_server, "build_server", build)
    args = cli.build_parser().parse_args(["mcp", "--data-dir", str(tmp_path), "--api-key", "k"])
    assert mcp_command.run(args) == 0
    [client] = made
    async with running_server(make_config(tmp_path)) as server:
        record_address(tmp_path, server.url)
        client.api_key = server.key
        assert await client.markets() == []
        assert client.base_url == server.url
    await client.aclose()
