"""The outage record: one "starts failing" and one "works again" per outage, whatever the number
of failures between, with how long it lasted and how many failures it counted."""

from __future__ import annotations

from purpleflea.outage import Outage, OutageRecord, describe


class Clock:
    """Seconds that move only when a test says so."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_the_first_failure_starts_an_outage() -> None:
    clock = Clock()
    record = OutageRecord(clock)
    assert not record.failing
    assert record.outage() is None
    assert record.failed("OSError: refused") is True
    assert record.failing
    clock.now += 2.5
    assert record.outage() == Outage(seconds=2.5, failures=1, last_error="OSError: refused")


def test_repeated_failures_are_counted_but_start_nothing() -> None:
    clock = Clock()
    record = OutageRecord(clock)
    record.failed("OSError: refused")
    for n in range(2, 500):
        clock.now += 1.0
        assert record.failed(f"TimeoutError: try {n}") is False
    assert record.outage() == Outage(
        seconds=498.0, failures=499, last_error="TimeoutError: try 499"
    )


def test_the_first_success_ends_the_outage_with_its_length_and_count() -> None:
    clock = Clock()
    record = OutageRecord(clock)
    record.failed("a")
    clock.now += 3.0
    record.failed("b")
    clock.now += 4.0
    ended = record.recovered()
    assert ended == Outage(seconds=7.0, failures=2, last_error="b")
    assert not record.failing
    assert record.outage() is None
    # Later successes end nothing: their callers say nothing.
    assert record.recovered() is None


def test_a_success_with_no_outage_reports_none() -> None:
    record = OutageRecord(Clock())
    assert record.recovered() is None
    assert record.recovered() is None
    assert not record.failing


def test_flapping_makes_one_outage_per_run_of_failures() -> None:
    """Fail, work, fail, work: two outages, each counted from its own first failure and timed
    from its own start (nothing carries over from the one before)."""
    clock = Clock()
    record = OutageRecord(clock)
    starts, ends = [], []
    for failures, lasting in ((3, 6.0), (1, 0.5), (2, 10.0)):
        for _ in range(failures):
            starts.append(record.failed("down"))
            clock.now += lasting / failures
        ends.append(record.recovered())
        clock.now += 60.0  # working for a minute between outages
        ends.append(record.recovered())
    assert starts == [True, False, False, True, True, False]
    assert ends == [
        Outage(seconds=6.0, failures=3, last_error="down"),
        None,
        Outage(seconds=0.5, failures=1, last_error="down"),
        None,
        Outage(seconds=10.0, failures=2, last_error="down"),
        None,
    ]


def test_describe_is_one_line_without_traceback() -> None:
    assert describe(OSError("database or disk is full\nDETAIL: more")) == (
        "OSError: database or disk is full"
    )
    assert describe(TimeoutError()) == "TimeoutError"
    assert describe(ValueError("  \n")) == "ValueError"
