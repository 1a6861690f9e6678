"""Venues that stay open and answer, but deliver nothing: each must be told, not look calm.

A gateway that keeps the socket open, acks the subscribe and answers every ping, then sends
no liquidation, looks alive to the frame watchdog. The all-market feeds (Binance, OKX, Bybit
linear) carry a data watchdog: no liquidation for longer than the market's measured quietest
stretch (docs/live.md) replaces the connection as ``silent``.
"""

from __future__ import annotations

import logging
from dataclasses import replace

import pytest

from purpleflea.ingest import feeds
from tests.fakes.exchanges import FakeExchange, dialect_for
from tests.fakes.harness import Feeds, catalogs_for_tests
from tests.ingest.test_faults import spec_for

#: The data watchdog's seconds in these tests (the venues' own are minutes).
DATA_TIMEOUT = 0.4


def _ours(caplog: pytest.LogCaptureFixture, level: int) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name.startswith("purpleflea") and r.levelno == level
    ]


@pytest.mark.parametrize(("connection", "exchange"), [("okx", "okx"), ("bybit_linear", "bybit")])
async def test_a_venue_answering_pings_but_sending_no_data_is_replaced_and_told_once(
    connection: str, exchange: str, caplog: pytest.LogCaptureFixture
) -> None:
    # The fake acks the subscribe and answers every ping, and has nothing to play. Before,
    # OKX and Bybit stayed "connected" and silent for ever: the pongs kept the frame
    # watchdog fed and nothing else was watched.
    caplog.set_level(logging.DEBUG, logger="purpleflea.ingest")
    async with FakeExchange(dialect_for(connection)) as fake:
        spec = spec_for(connection, exchange, fake.url)
        assert spec.data_timeout is not None, f"{connection} has no data watchdog"
        spec = replace(spec, data_timeout=DATA_TIMEOUT)
        async with Feeds([spec]) as run:
            await run.wait_for(lambda: run.stats[connection].silent >= 3, timeout=10)
    stats = run.stats[connection].snapshot()
    assert fake.connections >= 3
    assert all(s.subscribed.is_set() and s.pings > 0 for s in fake.sessions[:3])
    assert fake.violations == []
    assert stats["silent"] == stats["errors"]["silent"] >= 3
    assert str(stats["last_error"]).startswith(
        f"silent: no liquidation for {DATA_TIMEOUT:g} s, only keepalive answers"
    )
    # One outage, one WARNING: the pongs of each new connection do not prove it served (the
    # backoff's healthy period, 0.1 s here, is far shorter than the data timeout).
    warned = _ours(caplog, logging.WARNING)
    assert len(warned) == 1, warned
    assert "connected but sending no data" in warned[0]


def test_the_all_market_feeds_wait_longer_than_their_quietest_measured_stretch() -> None:
    # OKX's real liquidation orders of 2026-03-04/05 (bench/quiet_gaps.py): the longest gap
    # of five coins together was 1,566 s, of the three recorded at the file's start 2,336 s.
    # Live a connection carries every contract, so its gaps are shorter; the period keeps a
    # clear margin above both.
    specs = {s.name: s for s in feeds.build_feeds(catalogs_for_tests(), ["okx", "bybit"])}
    for name in ("okx", "bybit_linear"):
        data_timeout = specs[name].data_timeout
        assert data_timeout is not None, name
        assert data_timeout >= 2 * 1566, (name, data_timeout)
        assert data_timeout >= 1.5 * 2336, (name, data_timeout)
    # A handful of inverse contracts: one coin alone was quiet for two hours that day.
    assert specs["bybit_inverse"].data_timeout is None
