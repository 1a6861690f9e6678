"""The store's write health: what /v1/health and /v1/ready read, and its two lines an outage."""

from __future__ import annotations

import logging

import pytest

from purpleflea.server.writes import WriteHealth


class Clock:
    def __init__(self) -> None:
        self.now = 50.0

    def __call__(self) -> float:
        return self.now


def test_each_writer_has_its_own_outage_in_health(caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    writes = WriteHealth(clock)
    caplog.set_level(logging.INFO, logger="purpleflea.store")
    assert not writes.failing
    assert writes.snapshot() == {"writable": True, "failing": {}}
    assert writes.reasons() == []
    writes.succeeded("events")  # nothing was failing: nothing to say
    writes.failed("open interest", OSError("database or disk is full"), holding="rows held")
    clock.now += 1.0
    for _ in range(3):
        writes.failed("events", TimeoutError("no answer\ntraceback..."))
    clock.now += 12.34
    assert writes.failing
    assert writes.reasons() == [
        "store: events writes failing for 12 s (3 attempts): TimeoutError: no answer",
        "store: open interest writes failing for 13 s (1 attempts): OSError: database or disk "
        "is full",
    ]
    assert writes.snapshot() == {
        "writable": False,
        "failing": {
            "events": {"for_s": 12.3, "attempts": 3, "last_error": "TimeoutError: no answer"},
            "open interest": {
                "for_s": 13.3,
                "attempts": 1,
                "last_error": "OSError: database or disk is full",
            },
        },
    }
    writes.succeeded("open interest", summary="2 rows written")
    assert writes.failing  # events still fail
    assert [reason.split(" writes")[0] for reason in writes.reasons()] == ["store: events"]
    writes.succeeded("events")
    writes.succeeded("events")
    assert not writes.failing
    assert writes.snapshot() == {"writable": True, "failing": {}}
    assert [(r.levelname, r.getMessage()) for r in caplog.records] == [
        (
            "ERROR",
            "store: open interest writes failing: OSError: database or disk is full; rows held "
            "(retrying with backoff; the next line says when it recovers)",
        ),
        (
            "ERROR",
            "store: events writes failing: TimeoutError: no answer (retrying with backoff; the "
            "next line says when it recovers)",
        ),
        (
            "WARNING",
            "store: open interest writes recovered after 13.3 s and 1 failed attempts; 2 rows "
            "written",
        ),
        ("WARNING", "store: events writes recovered after 12.3 s and 3 failed attempts"),
    ]


def test_a_writer_failing_again_starts_a_new_outage(caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    writes = WriteHealth(clock)
    caplog.set_level(logging.INFO, logger="purpleflea.store")
    for lasting in (5.0, 2.0):
        writes.failed("events", OSError("full"))
        writes.failed("events", OSError("full"))
        clock.now += lasting
        writes.succeeded("events")
        clock.now += 100.0
    assert [r.getMessage() for r in caplog.records if "recovered" in r.getMessage()] == [
        "store: events writes recovered after 5.0 s and 2 failed attempts",
        "store: events writes recovered after 2.0 s and 2 failed attempts",
    ]


def test_while_a_backlog_goes_in_health_says_writes_work_again_not_the_last_error() -> None:
    # PostgreSQL back after 21 s: the ingest node stored its backlog for 12 s more while its
    # health said "events writes failing ... Connection refused" (operator findings).
    clock = Clock()
    writes = WriteHealth(clock)
    writes.failed("events", ConnectionError("Connection refused"))
    clock.now += 21.0
    writes.failed("events", ConnectionError("Connection refused"))
    writes.wrote("events")
    clock.now += 12.0
    assert writes.failing  # the outage ends when the backlog is stored, not at one write
    assert writes.reasons() == [
        "store: events writes work again for 12 s, storing what was held; they failed for "
        "21 s (2 attempts): ConnectionError: Connection refused"
    ]
    writes.failed("events", OSError("database or disk is full"))  # failing again: say so
    assert writes.reasons()[0].startswith("store: events writes failing for 33 s (3 attempts)")
    writes.wrote("events")
    writes.succeeded("events")
    assert writes.reasons() == []
    writes.wrote("events")  # nothing failing: nothing to say
    assert writes.reasons() == []
    assert not writes.failing
