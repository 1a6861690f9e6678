"""A webhook receiver for tests: a tiny HTTP/1.1 server on a loopback port (asyncio streams,
no framework) that verifies each delivery's signature and answers as it is told to."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import purpleflea

#: Answers, in order, for the next deliveries; then ``then`` for every one after.
Plan = list[int | tuple[int, dict[str, str]]]


@dataclass
class Delivery:
    """One request the receiver got and what it answered."""

    headers: dict[str, str]
    body: bytes
    status: int
    verified: bool

    @property
    def event_id(self) -> str:
        return self.headers["x-purpleflea-event-id"]

    @property
    def frame(self) -> dict[str, object]:
        import msgspec

        value: dict[str, object] = msgspec.json.decode(self.body)
        return value


@dataclass
class Receiver:
    """Answers ``plan`` then ``then``; ``hold`` (when set) keeps each request waiting until
    it is released. ``url`` is set once :func:`receiver` started it."""

    secret: str = ""
    plan: Plan = field(default_factory=list)
    then: int = 200
    hold: asyncio.Event | None = None
    url: str = ""
    deliveries: list[Delivery] = field(default_factory=list)
    waiting: int = 0
    #: When each delivery arrived (the event loop's clock), in arrival order.
    arrived: list[float] = field(default_factory=list)

    def answered(self, status: int) -> list[Delivery]:
        return [d for d in self.deliveries if d.status == status]

    def _answer(self) -> tuple[int, dict[str, str]]:
        if self.plan:
            step = self.plan.pop(0)
            return step if isinstance(step, tuple) else (step, {})
        return self.then, {}

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            headers = {}
            for line in lines[1:]:
                if ":" in line:
                    name, value = line.split(":", 1)
                    headers[name.strip().lower()] = value.strip()
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            self.arrived.append(asyncio.get_running_loop().time())
            if self.hold is not None:
                self.waiting += 1
                await self.hold.wait()
            try:
                purpleflea.verify_webhook(self.secret, body, headers)
                verified = True
            except purpleflea.WebhookVerificationError:
                verified = False
            status, extra = self._answer() if verified else (401, {})
            self.deliveries.append(Delivery(headers, body, status, verified))
            extra_lines = "".join(f"{k}: {v}\r\n" for k, v in extra.items())
            writer.write(
                f"HTTP/1.1 {status} X\r\nContent-Length: 2\r\nConnection: close\r\n"
                f"{extra_lines}\r\nok".encode()
            )
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()


@contextlib.asynccontextmanager
async def receiver(
    secret: str = "", *, host: str = "127.0.0.1", **options: object
) -> AsyncIterator[Receiver]:
    """A started :class:`Receiver` (its ``secret`` can be set once the webhook made one) on
    ``host``, a loopback address (Linux answers on all of 127.0.0.0/8)."""
    box = Receiver(secret=secret, **options)  # type: ignore[arg-type]
    server = await asyncio.start_server(box.handle, host, 0)
    port = server.sockets[0].getsockname()[1]
    box.url = f"http://{host}:{port}/hook"
    try:
        yield box
    finally:
        if box.hold is not None:
            box.hold.set()
        server.close()
        await server.wait_closed()


async def until(
    condition: Callable[[], bool],
    *,
    timeout: float = 20.0,
    what: str = "",
    progress: Callable[[], object] | None = None,
) -> None:
    """Poll ``condition`` until it holds (a generous timeout for a loaded machine).

    With ``progress``, the timeout counts from the last time its value changed: a long queue
    of deliveries may take minutes on a loaded machine, but a stall still fails in ``timeout``.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    seen = progress() if progress is not None else None
    while not condition():
        if progress is not None and (now := progress()) != seen:
            seen, deadline = now, loop.time() + timeout
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what or condition}")
        await asyncio.sleep(0.02)
