"""Running the app under uvicorn: our settings, and a shutdown that ends streams first.

uvicorn's own graceful shutdown closes WebSockets with 1012 and no reason, and waits without
limit for responses in progress: an SSE client that stops reading held it for 40 s and more.
:class:`TrackerServer` ends every stream with ``server_shutdown`` (WebSocket close 1001, an
SSE error event) before uvicorn closes connections, aborts the connections of clients that
take nothing, and bounds uvicorn's wait, so SIGTERM exits within seconds whatever clients
do.
"""

from __future__ import annotations

import socket

import uvicorn
from starlette.types import ASGIApp

from purpleflea.server.config import ServerConfig
from purpleflea.server.streaming import Streams

#: How long streams have to tell their clients before the connections of those that took
#: nothing are aborted.
STREAMS_GRACE_S = 1.5
#: How long uvicorn then waits for connections to finish before it cancels what is left (a
#: REST response in flight, say): the bound on shutdown whatever else happens.
CONNECTIONS_GRACE_S = 2


def uvicorn_config(
    app: ASGIApp, config: ServerConfig, *, log_level: str = "warning"
) -> uvicorn.Config:
    """The settings ``purpleflea serve`` (and the tests' in-process servers) run with: no
    access log (ours redacts keys), small WebSocket frames, a bounded graceful shutdown, and
    proxy headers believed only from ``config.trusted_proxies`` (uvicorn's own default trusts
    loopback, which let any local process pick its client address)."""
    return uvicorn.Config(
        app,
        log_level=log_level,
        access_log=False,
        ws_max_size=65_536,
        # Compression would cost a deflate per client per message on fan-out, and it hides a
        # stalled client behind a tiny kernel queue: off.
        ws_per_message_deflate=False,
        # Pinned: stream workers (workers.py) take the socket from under this implementation.
        ws="websockets-sansio",
        lifespan="on",
        timeout_graceful_shutdown=CONNECTIONS_GRACE_S,
        proxy_headers=bool(config.trusted_proxies),
        forwarded_allow_ips=list(config.trusted_proxies),
    )


class TrackerServer(uvicorn.Server):
    """A uvicorn server that ends the app's streams before its own shutdown."""

    def __init__(self, config: uvicorn.Config, streams: Streams) -> None:
        super().__init__(config)
        self.streams = streams

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        await self.streams.shut_down(STREAMS_GRACE_S)
        self.drop_stalled()
        await super().shutdown(sockets)

    def drop_stalled(self) -> int:
        """Abort the connections whose client is not taking what was sent (bytes still wait in
        their transport after the streams' grace): a graceful close would wait for those bytes
        forever, and a write blocked on them ends only when the connection is gone."""
        dropped = 0
        for connection in list(self.server_state.connections):
            transport = getattr(connection, "transport", None)
            if transport is not None and transport.get_write_buffer_size() > 0:
                transport.abort()
                dropped += 1
        return dropped
