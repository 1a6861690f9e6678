"""A connection refused by the per-address cap whose client has already hung up: refused
quietly, not with a traceback in the server's log."""

from __future__ import annotations

import logging
import socket
from pathlib import Path

import pytest

from purpleflea.server.serving import REFUSAL_LINGER_S
from tests.server.conftest import make_config, running_server, until


async def test_a_refused_connection_whose_client_left_logs_nothing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # bench/conncap.py's "client hangs up" round: the refusal's 503 reached a closed peer,
    # whose kernel answered with a reset before the half-close that follows it, and
    # shutdown(SHUT_WR) raised ENOTCONN inside connection_made: asyncio logged "Exception in
    # callback" with a traceback, one per connection, for anyone at all.
    caplog.set_level(logging.WARNING)
    async with running_server(make_config(tmp_path, connections_per_address=1)) as live:
        port = int(live.url.rsplit(":", 1)[1])
        held = socket.create_connection(("127.0.0.1", port))  # the address's one slot
        try:
            cap = live.server.connections
            await until(lambda: cap.held("127.0.0.1") == 1, 5, "the held slot")
            for _ in range(20):  # connected and gone before the server accepts them
                socket.create_connection(("127.0.0.1", port)).close()
            await until(lambda: cap.refused >= 20, 10, "the refusals")
            # Closed, and their lingering places given back.
            await until(lambda: cap.lingering == 0, 10 + REFUSAL_LINGER_S, "their close")
        finally:
            held.close()
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert not errors, [r.getMessage() for r in errors]
