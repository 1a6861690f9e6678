"""Venues that stay open and answer, but deliver nothing: each must be told, not look calm.

A gateway that keeps the socket open, acks the subscribe and answers every ping, then sends
no liquidation, looks alive to the frame watchdog. The all-market feeds (Binance, OKX, Bybit
linear) carry a data watchdog: no liquidation for longer than the market's measured quietest
stretch (docs/live.md) replaces the connection as ``silent``. Bitget's refusals are sorted by
its error codes as OKX's are: a transient one is asked again on a new connection, a wrong
argument is one ERROR, listed in ``rejected``.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import replace

import pytest

from purpleflea.ingest import feeds
from tests.fakes.exchanges import Bitget, FakeExchange, Faults, dialect_for
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


async def test_a_connection_that_subscribes_nothing_is_not_cut_for_sending_no_data() -> None:
    # A category with no symbols in the catalog sends no subscribe: no liquidation can come,
    # and none is missing. Without the guard it would be cut as silent every data timeout.
    async with FakeExchange(dialect_for("bybit_linear")) as fake:
        spec = spec_for("bybit_linear", "bybit", fake.url)
        spec = replace(spec, subscribe=(), data_timeout=DATA_TIMEOUT)
        async with Feeds([spec]) as run:
            await run.wait_for(lambda: bool(fake.sessions) and fake.sessions[0].pings >= 5)
            await asyncio.sleep(3 * DATA_TIMEOUT)
    stats = run.stats["bybit_linear"]
    assert stats.silent == 0, stats.snapshot()
    assert fake.connections == 1


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
    # A handful of inverse contracts: one coin alone was quiet for two hours that day. Its
    # watchdog is fed by its BTCUSD ticker instead (tests/ingest/test_liveness.py).
    assert specs["bybit_inverse"].liveness is not None
    assert specs["okx"].liveness is None
    assert specs["bybit_linear"].liveness is None


async def test_bitget_refusing_for_now_is_asked_again_on_a_new_connection(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # 30006 "request too many" passes later. Before, Bitget's refusals were only a warning
    # and the connection stayed up, subscribed to nothing, for ever.
    caplog.set_level(logging.DEBUG, logger="purpleflea.ingest")
    refusing = Faults(refuse_subscribe=True)
    async with FakeExchange(Bitget(refusal_code=30006), faults=refusing) as fake:
        spec = spec_for("bitget", "bitget", fake.url)
        async with Feeds([spec]) as run:
            await run.wait_for(lambda: run.stats["bitget"].errors["refused_retry"] >= 3)
    stats = run.stats["bitget"]
    assert fake.connections >= 3
    assert stats.errors["refused"] >= stats.errors["refused_retry"]
    assert stats.rejected == []
    assert "30006: request too many" in stats.last_error
    assert _ours(caplog, logging.ERROR) == []
    warned = _ours(caplog, logging.WARNING)
    assert len(warned) == 1, warned  # one outage, one warning


async def test_bitget_refusing_an_argument_is_one_error_naming_it_and_listed_in_health(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # 30001: the argument does not exist; asking again gets the same answer. One ERROR that
    # names it, listed in /v1/health's "rejected", and no reconnect loop.
    caplog.set_level(logging.DEBUG, logger="purpleflea.ingest")
    async with FakeExchange(Bitget(), faults=Faults(refuse_subscribe=True)) as fake:
        spec = spec_for("bitget", "bitget", fake.url)
        async with Feeds([spec]) as run:
            await run.wait_for(lambda: run.stats["bitget"].errors["refused"] >= 1)
            await run.wait_for(lambda: fake.sessions[0].pings >= 3)  # still up, answering
    stats = run.stats["bitget"].snapshot()
    assert fake.connections == 1
    named = '{"instType":"usdt-futures","topic":"liquidation"}'
    assert stats["rejected"] == [f"30001: {named} doesn't exist"]
    assert "refused_retry" not in stats["errors"]
    errors = _ours(caplog, logging.ERROR)
    assert len(errors) == 1, errors
    assert named in errors[0]
    assert _ours(caplog, logging.WARNING) == []


def test_bitget_refusals_worth_asking_again_are_the_transient_ones() -> None:
    from purpleflea.venues.bitget.connection import retry_refused

    def refusal(code: object) -> str:
        return json.dumps({"event": "error", "code": code, "msg": "m"})

    codes: list[object] = [30001, "30001", 30002, 30003, 30006, "30006", 30007, 30016, 429, 40015]
    assert [c for c in codes if retry_refused(refusal(c))] == [30006, "30006", 30007, 429, 40015]
    assert not retry_refused("pong")
    assert not retry_refused('{"event":"subscribe","code":30006}')
