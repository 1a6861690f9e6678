"""The listening socket: bounded kernel send buffers per client.

Linux grows a TCP send buffer up to several MB per connection by default, so a client that
stops reading could park megabytes in the kernel before the server notices. Accepted sockets
inherit ``SO_SNDBUF`` from the listener, so setting it here bounds that per client and lets
the per-client message buffer (the part we control) decide when a consumer is too slow.
"""

from __future__ import annotations

import socket


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
