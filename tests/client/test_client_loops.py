"""A client made once at module level, as the README's example does, serves every event loop
that uses it: a script or notebook may call ``asyncio.run()`` more than once."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from purpleflea.client import LiquidationClient


class _Markets(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: the client holds a connection between runs

    def do_GET(self) -> None:
        body = b'{"markets": [{"market": "BTC-PERP"}]}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Markets)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_one_client_serves_two_asyncio_runs(server_url: str) -> None:
    # The second asyncio.run() failed with "RuntimeError: Event loop is closed": the HTTP
    # client kept the first loop's connections.
    liq = LiquidationClient(api_key="pf_x", base_url=server_url)

    async def names() -> list[str]:
        return [m["market"] for m in await liq.markets()]

    assert asyncio.run(names()) == ["BTC-PERP"]
    assert asyncio.run(names()) == ["BTC-PERP"]

    async def close() -> None:
        await liq.aclose()

    asyncio.run(close())
