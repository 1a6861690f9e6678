"""The listening side: the socket (bounded kernel send buffers per client) and uvicorn's
settings, shared by ``purpleflea serve`` and the tests so both run the same server.

Linux grows a TCP send buffer up to several MB per connection by default, so a client that
stops reading could park megabytes in the kernel before the server notices. Accepted sockets
inherit ``SO_SNDBUF`` from the listener, so setting it here bounds that per client and lets
the per-client message buffer (the part we control) decide when a consumer is too slow.
"""

from __future__ import annotations

import socket
from typing import TYPE_CHECKING

import uvicorn
from starlette.types import ASGIApp

if TYPE_CHECKING:
    from purpleflea.server.config import ServerConfig


def listen_socket(host: str, port: int, *, send_buffer: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY only on sockets that say they are TCP,
    # and without it every small response waits ~40 ms for Nagle (bench/e2e.py found it).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if send_buffer > 0:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, send_buffer)
    sock.bind((host, port))
    sock.listen(2048)
    sock.setblocking(False)
    return sock


def uvicorn_config(app: ASGIApp, config: ServerConfig) -> uvicorn.Config:
    """How uvicorn serves ``app``: no access log (ours redacts keys), small WebSocket frames,
    and proxy headers believed only from ``config.trusted_proxies`` (uvicorn's own default
    trusts loopback, which let any local process pick its client address)."""
    return uvicorn.Config(
        app,
        log_level="warning",
        access_log=False,
        ws_max_size=65_536,
        # Compression would cost a deflate per client per message on fan-out, and it hides a
        # stalled client behind a tiny kernel queue: off.
        ws_per_message_deflate=False,
        lifespan="on",
        proxy_headers=bool(config.trusted_proxies),
        forwarded_allow_ips=list(config.trusted_proxies) or [],
    )
