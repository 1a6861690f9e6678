"""The NATS client's reports, driven without a server: what the bus logs and counts for them
(tests/bus/test_nats.py runs the same through a real cut connection, in seconds)."""

from __future__ import annotations

import logging
from collections import Counter
from typing import Any, cast

import nats.errors
import pytest

from purpleflea.bus.nats import OutageLog


class Clock:
    def __init__(self) -> None:
        self.now = 10.0

    def __call__(self) -> float:
        return self.now


class Client:
    """What the outage log reads of the NATS client: whether the node closed it."""

    is_closed = False


def _log(clock: Clock) -> tuple[OutageLog, Counter[str], Client]:
    counters: Counter[str] = Counter()
    outages = OutageLog("NATS bus PF", counters, clock)
    client = Client()
    outages.connected(cast(Any, client))
    return outages, counters, client


def _lines(caplog: pytest.LogCaptureFixture) -> list[tuple[str, str]]:
    return [
        (r.levelname, r.getMessage()) for r in caplog.records if r.name == "purpleflea.bus.nats"
    ]


async def test_a_lost_connection_is_one_line_and_its_return_another(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = Clock()
    outages, counters, _ = _log(clock)
    caplog.set_level(logging.INFO)
    await outages.disconnected()
    for _ in range(4):
        clock.now += 2.0
        await outages.error(ConnectionRefusedError(111, "Connect call failed"))
        await outages.disconnected()  # the client says it again: the same outage
    assert counters == {"connection_lost": 1, "reconnect_errors": 4}
    clock.now += 0.25
    await outages.reconnected()
    await outages.reconnected()  # nothing was lost: nothing to say
    assert counters == {"connection_lost": 1, "reconnect_errors": 0}
    assert _lines(caplog) == [
        (
            "WARNING",
            "NATS bus PF: connection lost (disconnected); reconnecting every 2 s, the next line "
            "says when it is back",
        ),
        ("WARNING", "NATS bus PF: reconnected after 8.2 s (4 failed attempts)"),
    ]


async def test_an_outage_that_starts_with_an_error_names_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = Clock()
    outages, counters, _ = _log(clock)
    caplog.set_level(logging.INFO)
    await outages.error(nats.errors.UnexpectedEOF())
    await outages.disconnected()
    clock.now += 3.0
    await outages.error(nats.errors.StaleConnectionError())
    await outages.error(ValueError("a protocol error\nsecond line"))  # not an outage: one line
    await outages.reconnected()
    # Flapping: a second outage is counted and timed on its own.
    await outages.error(TimeoutError())
    clock.now += 1.0
    await outages.reconnected()
    assert counters == {"connection_lost": 2, "reconnect_errors": 0}
    assert _lines(caplog) == [
        (
            "WARNING",
            "NATS bus PF: connection lost (UnexpectedEOF: nats: unexpected EOF); reconnecting "
            "every 2 s, the next line says when it is back",
        ),
        ("WARNING", "NATS bus PF: ValueError: a protocol error"),
        ("WARNING", "NATS bus PF: reconnected after 3.0 s (1 failed attempts)"),
        (
            "WARNING",
            "NATS bus PF: connection lost (TimeoutError); reconnecting every 2 s, the next line "
            "says when it is back",
        ),
        ("WARNING", "NATS bus PF: reconnected after 1.0 s (0 failed attempts)"),
    ]


async def test_a_node_started_before_nats_waits_and_says_when_it_connected(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = Clock()
    counters: Counter[str] = Counter()
    outages = OutageLog("NATS bus PF", counters, clock)
    caplog.set_level(logging.INFO)
    await outages.error(ConnectionRefusedError(111, "Connect call failed"))
    await outages.error(ConnectionRefusedError(111, "Connect call failed"))
    clock.now += 4.0
    outages.connected(cast(Any, Client()))
    assert counters["connection_lost"] == 0  # a start, not an outage
    assert counters["reconnect_errors"] == 0
    assert _lines(caplog) == [
        (
            "WARNING",
            "NATS bus PF: NATS not reachable yet (ConnectionRefusedError: [Errno 111] Connect "
            "call failed); this node waits for it, retrying every 2 s",
        ),
        ("WARNING", "NATS bus PF: connected after 4.0 s (1 failed attempts)"),
    ]


async def test_the_node_closing_its_client_is_no_outage(caplog: pytest.LogCaptureFixture) -> None:
    outages, counters, client = _log(Clock())
    caplog.set_level(logging.INFO)
    client.is_closed = True
    await outages.disconnected()
    assert counters == {}
    assert _lines(caplog) == []
