"""The scale-out harness's ports: a node is reached on the port it bound itself, and a URL
meant to be dead stays dead, whatever other tests (or processes) bind meanwhile."""

from __future__ import annotations

import asyncio
import errno
import socket
from pathlib import Path

import pytest

from tests.ports import listening_ports, refused_url
from tests.scaleout.cluster import cluster


async def _imposter(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Another test's server: answers anything with 200."""
    await reader.readuntil(b"\r\n\r\n")
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}")
    await writer.drain()
    writer.close()


async def test_a_port_taken_before_the_node_binds_is_not_mistaken_for_the_node(
    tmp_path: Path,
) -> None:
    # The harness picked a free port, released it and passed it to the node: another test's
    # server could bind it first. The node then failed ("port ... is in use") while the other
    # server answered its health check, and the test talked to a stranger.
    async with cluster(tmp_path) as services:
        node = services.node("api", "api")
        taken = None
        if node.port:  # a port chosen before the node runs: another server takes it now
            taken = await asyncio.start_server(_imposter, "127.0.0.1", node.port)
        try:
            await services.start(node)
        finally:
            if taken is not None:
                taken.close()
        assert node.process is not None
        assert node.port in listening_ports(node.process.pid)
        assert "last_seq" in node.health()  # the tracker's health, not the stranger's "{}"


def test_a_refused_url_stays_refused_while_held() -> None:
    with refused_url() as dead:
        port = int(dead.rsplit(":", 1)[1])
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", port), timeout=5).close()
        # Another server (uvicorn sets SO_REUSEADDR) cannot take the port meanwhile.
        with socket.socket() as other:
            other.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            with pytest.raises(OSError, match="in use") as taken:
                other.bind(("127.0.0.1", port))
            assert taken.value.errno == errno.EADDRINUSE
