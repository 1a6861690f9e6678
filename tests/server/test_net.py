"""The listening socket's per-client settings reach the accepted connections."""

from __future__ import annotations

import socket
import sys
import time

import pytest

from purpleflea.server.net import listen_socket


def _send_until_refused(sock: socket.socket, timeout: float) -> OSError | None:
    """Keep ``sock``'s send buffer full; the error that ends it, None if none came."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            sock.send(b"x" * 65_536)
        except BlockingIOError:
            time.sleep(0.05)
        except OSError as exc:
            return exc
    return None


@pytest.mark.skipif(sys.platform != "linux", reason="TCP_USER_TIMEOUT is Linux's")
def test_a_client_that_stops_reading_is_dropped_by_the_kernel() -> None:
    listener = listen_socket("127.0.0.1", 0, send_buffer=16_384, dead_peer_timeout_s=1.0)
    client = socket.socket()
    client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4_096)
    with listener, client:
        client.connect(listener.getsockname())
        listener.setblocking(True)
        served, _ = listener.accept()
        with served:
            served.setblocking(False)
            started = time.monotonic()
            error = _send_until_refused(served, 30)
    # ETIMEDOUT once the client's window stayed shut for the timeout, not 30 s of waiting.
    assert isinstance(error, TimeoutError), error
    assert time.monotonic() - started < 15
