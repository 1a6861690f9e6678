"""A subscribe a venue refuses, in the venue's real words, must never look like a healthy ack.

A refused subscribe leaves the socket open: pings and heartbeats go on being answered (and a
liveness channel on the same socket keeps pushing), so nothing else would show that no
liquidation can come. Each venue's refusals are sorted by what the venue says: one that can
pass later (a rate limit, the venue's own error) is asked again on a new connection after the
backoff (``errors["refused_retry"]``); one that names a wrong request is one ERROR with the
venue's words, listed in /v1/health's ``rejected``, and not asked again.

Shapes: Deribit's subscribe answered with our channel left out of the result list
(adampointer/go-deribit issue 16) and its 10028 ``too_many_requests`` (docs.deribit.com,
"Error Codes").
"""

from __future__ import annotations

import logging

import pytest

from tests.fakes.exchanges import Bitmex, Deribit, FakeExchange, Faults, Gate
from tests.fakes.harness import Feeds
from tests.ingest.test_faults import spec_for

REFUSING = Faults(refuse_subscribe=True)


def _ours(caplog: pytest.LogCaptureFixture, level: int) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name.startswith("purpleflea") and r.levelno == level
    ]


async def test_deribit_leaving_our_channel_out_of_its_answer_is_one_error_naming_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Deribit answers a channel it does not serve with ``"result":[]`` and no error. Before,
    # that answer was taken for an ack: the connection answered heartbeats for ever, with no
    # word anywhere that nothing was subscribed.
    caplog.set_level(logging.DEBUG, logger="purpleflea.ingest")
    async with FakeExchange(Deribit(refusal="left_out"), faults=REFUSING) as fake:
        spec = spec_for("deribit", "deribit", fake.url)
        async with Feeds([spec]) as run:
            await run.wait_for(lambda: run.stats["deribit"].errors["refused"] >= 1)
            await run.wait_for(lambda: fake.sessions[0].pings >= 3)  # still up, answering
    stats = run.stats["deribit"].snapshot()
    assert fake.connections == 1
    said = "public/subscribe answered []: trades.future.any.100ms is not subscribed"
    assert stats["rejected"] == [said]
    assert "refused_retry" not in stats["errors"]
    errors = _ours(caplog, logging.ERROR)
    assert len(errors) == 1, errors
    assert said in errors[0]


async def test_deribit_rate_limiting_our_subscribe_is_asked_again_on_a_new_connection(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # 10028 too_many_requests passes later. Before, it was one warning and the connection
    # stayed up, subscribed to nothing, for ever (Deribit has no data watchdog).
    caplog.set_level(logging.DEBUG, logger="purpleflea.ingest")
    async with FakeExchange(Deribit(refusal="too_many_requests"), faults=REFUSING) as fake:
        spec = spec_for("deribit", "deribit", fake.url)
        async with Feeds([spec]) as run:
            await run.wait_for(lambda: run.stats["deribit"].errors["refused_retry"] >= 3)
    stats = run.stats["deribit"]
    assert fake.connections >= 3
    assert stats.rejected == []
    assert '"code":10028' in stats.last_error
    assert _ours(caplog, logging.ERROR) == []


def test_deribit_refusals_worth_asking_again_are_the_transient_codes() -> None:
    from purpleflea.venues.deribit.connection import refusal, retry_refused

    def error(code: object) -> str:
        return f'{{"jsonrpc":"2.0","id":2,"error":{{"code":{code},"message":"m"}}}}'

    codes = [-32602, -32601, 10028, 10040, 10066, 11050, 11051, 11094, 13028, 13888, '"10028"']
    assert all(refusal(error(c)) is not None for c in codes)
    assert [c for c in codes if retry_refused(error(c))] == [
        10028,
        10040,
        10066,
        11051,
        11094,
        13028,
        13888,
    ]
    left_out = '{"jsonrpc":"2.0","id":2,"result":[],"usIn":1,"usOut":2,"usDiff":1}'
    assert refusal(left_out) is not None
    assert not retry_refused(left_out)
    # Our channel in the answer is the ack; the heartbeat's and the test's answers are not
    # subscribe answers at all.
    ack = '{"jsonrpc":"2.0","id":2,"result":["trades.future.any.100ms"]}'
    assert refusal(ack) is None
    assert refusal('{"jsonrpc":"2.0","id":1,"result":"ok"}') is None
    assert refusal('{"jsonrpc":"2.0","id":9,"result":{"version":"1.2.26"}}') is None


async def test_bitmex_rate_limiting_our_subscribe_is_asked_again_on_a_new_connection(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # BitMEX's 429 "Rate limit exceeded, retry in 1 seconds." passes later. Before, it was one
    # warning: the connection stayed up without the liquidation table, and had the instrument
    # table been taken, its pushes would have kept the data watchdog fed for ever.
    caplog.set_level(logging.DEBUG, logger="purpleflea.ingest")
    async with FakeExchange(Bitmex(refusal_status=429), faults=REFUSING) as fake:
        spec = spec_for("bitmex", "bitmex", fake.url)
        async with Feeds([spec]) as run:
            await run.wait_for(lambda: run.stats["bitmex"].errors["refused_retry"] >= 3)
    stats = run.stats["bitmex"]
    assert fake.connections >= 3
    assert stats.rejected == []
    assert "429: Rate limit exceeded, retry in 1 seconds." in stats.last_error
    assert _ours(caplog, logging.ERROR) == []


async def test_bitmex_refusing_a_table_is_one_error_naming_it_and_listed_in_health(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="purpleflea.ingest")
    async with FakeExchange(Bitmex(), faults=REFUSING) as fake:
        spec = spec_for("bitmex", "bitmex", fake.url)
        async with Feeds([spec]) as run:
            await run.wait_for(lambda: run.stats["bitmex"].errors["refused"] >= 2)
            await run.wait_for(lambda: fake.sessions[0].pings >= 3)  # still up, answering
    stats = run.stats["bitmex"].snapshot()
    assert fake.connections == 1
    assert stats["rejected"] == ["400: Unknown table: liquidation"]
    assert "refused_retry" not in stats["errors"]
    errors = _ours(caplog, logging.ERROR)
    assert len(errors) == 1, errors
    assert "Unknown table: liquidation" in errors[0]


def test_bitmex_refusals_worth_asking_again_are_429_and_5xx() -> None:
    from purpleflea.venues.bitmex.connection import retry_refused

    def error(status: object) -> str:
        return f'{{"status":{status},"error":"e","meta":{{}},"request":{{}}}}'

    statuses = [400, 401, 403, 404, 429, 500, 503, '"429"', "true"]
    assert [s for s in statuses if retry_refused(error(s))] == [429, 500, 503]
    assert not retry_refused("pong")


async def test_gate_s_server_error_on_our_subscribe_is_asked_again_on_a_new_connection(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Code 3 "Server side error happened" passes later. Before, every Gate refusal was one
    # warning and the connection stayed up with nothing subscribed.
    caplog.set_level(logging.DEBUG, logger="purpleflea.ingest")
    async with FakeExchange(Gate(refusal_code=3), faults=REFUSING) as fake:
        spec = spec_for("gate_usdt", "gate", fake.url)
        async with Feeds([spec]) as run:
            await run.wait_for(lambda: run.stats["gate_usdt"].errors["refused_retry"] >= 3)
    stats = run.stats["gate_usdt"]
    assert fake.connections >= 3
    assert stats.rejected == []
    assert "Server side error happened" in stats.last_error
    assert _ours(caplog, logging.ERROR) == []


async def test_gate_refusing_an_argument_is_one_error_naming_it_and_listed_in_health(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="purpleflea.ingest")
    async with FakeExchange(Gate(), faults=REFUSING) as fake:
        spec = spec_for("gate_usdt", "gate", fake.url)
        async with Feeds([spec]) as run:
            await run.wait_for(lambda: run.stats["gate_usdt"].errors["refused"] >= 2)
            await run.wait_for(lambda: fake.sessions[0].pings >= 3)  # still up, answering
    stats = run.stats["gate_usdt"].snapshot()
    assert fake.connections == 1
    assert stats["rejected"] == ['{"code":2,"message":"unknown contract"}']
    assert "refused_retry" not in stats["errors"]
    errors = _ours(caplog, logging.ERROR)
    assert len(errors) == 1, errors
    assert "unknown contract" in errors[0]


def test_gate_refusals_worth_asking_again_are_its_server_errors() -> None:
    from purpleflea.venues.gate.connection import refusal, retry_refused

    def error(code: object) -> str:
        answer = '{"time":1,"channel":"c","event":"subscribe","error":{"code":CODE,"message":"m"}}'
        return answer.replace("CODE", str(code))

    codes = [1, 2, 3, 4, '"3"', "true"]
    assert all(refusal(error(c)) is not None for c in codes)
    assert [c for c in codes if retry_refused(error(c))] == [3]
    failed = (
        '{"time":1,"channel":"c","event":"subscribe","error":null,"result":{"status":"failed"}}'
    )
    assert refusal(failed) is not None
    assert not retry_refused(failed)
