"""Role settings, and role ``all`` on the shared store and bus (one process, scale-out parts)."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path

import nats
import pytest
import uvicorn

import purpleflea
from purpleflea.model import Liquidation
from purpleflea.server.app import build_server, create_app, nats_options, open_server
from purpleflea.server.config import ServerConfig
from purpleflea.server.net import listen_socket
from tests.scaleout.cluster import cluster
from tests.server.conftest import make_config, venue_event


def test_roles_need_what_they_run_on(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="role must be one of all, ingest, api"):
        ServerConfig(role="edge")
    with pytest.raises(ValueError, match="role 'api' needs a shared bus"):
        ServerConfig(role="api", source="none")
    with pytest.raises(ValueError, match="role 'api' runs no source"):
        ServerConfig(role="api", bus_url="nats://127.0.0.1:4222")
    ingest = ServerConfig(data_dir=tmp_path, role="ingest", bus_url="nats://127.0.0.1:4222")
    assert ingest.store == str(tmp_path / "purpleflea.sqlite")
    with pytest.raises(ValueError, match="use `await open_server"):
        build_server(ingest)


def test_bus_urls_name_server_stream_and_prefix() -> None:
    assert nats_options("nats://h:4222") == ("nats://h:4222", "PURPLEFLEA", "pf")
    assert nats_options("nats://h:4222?stream=S&prefix=p") == ("nats://h:4222", "S", "p")
    with pytest.raises(ValueError, match="unknown options"):
        nats_options("nats://h:4222?streams=S")
    with pytest.raises(ValueError, match="use nats://host:port"):
        nats_options("redis://h:6379")


async def test_role_all_on_postgres_and_nats_serves_its_own_clients(tmp_path: Path) -> None:
    async with cluster(tmp_path) as services:
        config = replace(
            make_config(tmp_path / "api"), store_url=services.store_url, bus_url=services.bus_url
        )
        server = await open_server(config)
        uv = uvicorn.Server(uvicorn.Config(create_app(config, server=server), log_level="warning"))
        task = asyncio.create_task(
            uv.serve(sockets=[listen_socket("127.0.0.1", 0, send_buffer=65_536)])
        )
        try:
            while not uv.started:
                await asyncio.sleep(0.01)
            url = f"http://127.0.0.1:{uv.servers[0].sockets[0].getsockname()[1]}"
            client = purpleflea.LiquidationClient(services.key, url)
            async with client.stream(max_backoff=0.2) as stream:
                for _ in range(5):
                    server.tracker.submit(venue_event())
                got: list[int] = []
                async for item in stream:
                    assert isinstance(item, Liquidation)
                    got.append(item.seq)
                    if len(got) == 5:
                        break
            assert got == [1, 2, 3, 4, 5]
            assert [e.seq for e in (await client.history()).events] == [5, 4, 3, 2, 1]
            assert server.health()["bus"]["published"] == 5
            await client.aclose()
        finally:
            uv.should_exit = True
            await asyncio.wait_for(task, 10)
        # The events went through JetStream, not an in-process shortcut.
        connection = await nats.connect(services.bus_url.split("?")[0])
        try:
            info = await connection.jetstream().stream_info(services.stream)
        finally:
            await connection.close()
        assert info.state.messages == 5
