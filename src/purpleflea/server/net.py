"""The listening socket: bounded kernel send buffers per client, and dead peers dropped.

Linux grows a TCP send buffer up to several MB per connection by default, so a client that
stops reading could park megabytes in the kernel before the server notices. Accepted sockets
inherit ``SO_SNDBUF`` from the listener, so setting it here bounds that per client and lets
the per-client buffer (the part we control, in bytes) decide when a consumer is too slow.

They inherit ``TCP_USER_TIMEOUT`` too: a peer that acknowledges nothing for that long (a
zero receive window included: a client that stopped reading) is dropped by the kernel. Without
it, a connection cut as a slow consumer that still holds unsent bytes stays open for as long
as its client keeps the window shut, which costs a descriptor each, without limit. It is a
liveness rule, not the slow-consumer rule (that one is in bytes, and says why): long enough
that a busy stream's client is cut by bytes first, it drops the connections of clients that
took nothing for two minutes, which no live client does while data waits for it.
"""

from __future__ import annotations

import socket

#: Seconds a peer may leave our sent data unacknowledged before its connection is dropped.
DEAD_PEER_TIMEOUT_S = 120.0


def listen_socket(
    host: str, port: int, *, send_buffer: int, dead_peer_timeout_s: float = DEAD_PEER_TIMEOUT_S
) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY only on sockets that say they are TCP,
    # and without it every small response waits ~40 ms for Nagle (bench/e2e.py found it).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if send_buffer > 0:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, send_buffer)
    user_timeout = getattr(socket, "TCP_USER_TIMEOUT", None)  # Linux only
    if user_timeout is not None and dead_peer_timeout_s > 0:
        sock.setsockopt(socket.IPPROTO_TCP, user_timeout, int(dead_peer_timeout_s * 1000))
    sock.bind((host, port))
    sock.listen(2048)
    sock.setblocking(False)
    return sock
