"""A tiny loopback HTTP server answering JSON bodies by path (catalogs, pollers, histories).

A route is a fixed body, or a function of the query's parameters (a venue's REST history
answering a time window, see tests/fakes/history.py). Unknown paths answer 404. Every
request is recorded in ``requests`` (method, path+query), so tests can assert what was
fetched and how often.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Mapping
from urllib.parse import parse_qsl

Route = bytes | Callable[[dict[str, str]], bytes]


class FakeRest:
    def __init__(self, routes: Mapping[str, Route]) -> None:
        self.routes = dict(routes)  # path (without query) -> body
        self.requests: list[tuple[str, str]] = []
        self._server: asyncio.Server | None = None

    @property
    def base(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.sockets[0].getsockname()[1]}"

    async def __aenter__(self) -> FakeRest:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
            head = await reader.readuntil(b"\r\n\r\n")
            method, target = head.split(b" ", 2)[:2]
            length = 0
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            if length:
                await reader.readexactly(length)
            path = target.decode()
            self.requests.append((method.decode(), path))
            route, _, query = path.partition("?")
            found = self.routes.get(route)
            body = found(dict(parse_qsl(query))) if callable(found) else found
            status = b"200 OK" if body is not None else b"404 Not Found"
            body = body if body is not None else b'{"error":"not found"}'
            writer.write(
                b"HTTP/1.1 " + status + b"\r\nContent-Type: application/json\r\n"
                b"Content-Length: "
                + str(len(body)).encode()
                + b"\r\nConnection: close\r\n\r\n"
                + body
            )
            await writer.drain()
        writer.close()
