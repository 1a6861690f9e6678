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

import gzip
import json
import logging

import pytest

from tests.fakes.exchanges import Binance, Bitmex, Deribit, FakeExchange, Faults, Gate, Htx
from tests.fakes.harness import Feeds
from tests.ingest.test_faults import spec_for

REFUSING = Faults(refuse_subscribe=True)


def _ours(caplog: pytest.LogCaptureFixture, level: int) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name.startswith("purpleflea") and r.levelno == level
    ]


#: A refusal that can pass later, by venue: the fake's refusing exchange, the connection's
#: route and exchange, and what the venue said. Before, each was one warning and the
#: connection stayed up subscribed to nothing, for ever (Deribit has no data watchdog; had
#: BitMEX's instrument table been taken, its pushes would have fed the watchdog).
ASKED_AGAIN = {
    # Deribit's 10028 too_many_requests.
    "deribit": (lambda: Deribit(refusal="too_many_requests"), "deribit", '"code":10028'),
    # BitMEX's 429 "Rate limit exceeded, retry in 1 seconds."
    "bitmex": (
        lambda: Bitmex(refusal_status=429),
        "bitmex",
        "429: Rate limit exceeded, retry in 1 seconds.",
    ),
    # Gate's code 3 "Server side error happened".
    "gate_usdt": (lambda: Gate(refusal_code=3), "gate", "Server side error happened"),
    # HTX's 2004 "Number of visits exceeds limit." and its codeless ``op: error`` (its
    # notification endpoints' docs, "Response code (Err-Code)" and "Server return error code
    # but remain connection"). Before, a refused HTX subscribe was only a warning, and the
    # contract_info pushes kept the connection "alive" with no liquidation subscribed.
    "htx_linear": (
        lambda: Htx("linear", refusal="visits_limit"),
        "htx",
        "2004: Number of visits exceeds limit.",
    ),
    "htx_coin": (lambda: Htx("coin", refusal="op_error"), "htx", "op error"),
}

#: A refusal naming a wrong request, by venue: the fake, its exchange, the refusals counted
#: before the check, and what health's ``rejected`` lists. Deribit answers a channel it does
#: not serve with ``"result":[]`` and no error (taken for an ack before).
ONE_ERROR = {
    "deribit": (
        lambda: Deribit(refusal="left_out"),
        "deribit",
        1,
        "public/subscribe answered []: trades.future.any.100ms is not subscribed",
    ),
    "bitmex": (Bitmex, "bitmex", 2, "400: Unknown table: liquidation"),
    "gate_usdt": (Gate, "gate", 2, '{"code":2,"message":"unknown contract"}'),
    # HTX's 2010 "Topic error." (same table): before, a warning per refused sub.
    "htx_linear": (lambda: Htx("linear"), "htx", 2, "2010: Topic error."),
}


@pytest.mark.parametrize("route", sorted(ASKED_AGAIN))
async def test_a_refusal_that_can_pass_later_is_asked_again_on_a_new_connection(
    route: str, caplog: pytest.LogCaptureFixture
) -> None:
    venue, exchange, said = ASKED_AGAIN[route]
    caplog.set_level(logging.DEBUG, logger="purpleflea.ingest")
    async with (
        FakeExchange(venue(), faults=REFUSING) as fake,
        Feeds([spec_for(route, exchange, fake.url)]) as run,
    ):
        await run.wait_for(lambda: run.stats[route].errors["refused_retry"] >= 3)
    stats = run.stats[route]
    assert fake.connections >= 3
    assert stats.rejected == []
    assert said in stats.last_error
    assert _ours(caplog, logging.ERROR) == []


@pytest.mark.parametrize("route", sorted(ONE_ERROR))
async def test_a_refusal_naming_a_wrong_request_is_one_error_listed_in_health(
    route: str, caplog: pytest.LogCaptureFixture
) -> None:
    venue, exchange, refused, said = ONE_ERROR[route]
    caplog.set_level(logging.DEBUG, logger="purpleflea.ingest")
    async with (
        FakeExchange(venue(), faults=REFUSING) as fake,
        Feeds([spec_for(route, exchange, fake.url)]) as run,
    ):
        await run.wait_for(lambda: run.stats[route].errors["refused"] >= refused)
        await run.wait_for(lambda: fake.sessions[0].pings >= 3)  # still up, answering
    stats = run.stats[route].snapshot()
    assert fake.connections == 1
    assert stats["rejected"] == [said]
    assert "refused_retry" not in stats["errors"]
    errors = _ours(caplog, logging.ERROR)
    assert len(errors) == 1, errors
    assert said in errors[0]


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


def test_bitmex_refusals_worth_asking_again_are_429_and_5xx() -> None:
    from purpleflea.venues.bitmex.connection import retry_refused

    def error(status: object) -> str:
        return f'{{"status":{status},"error":"e","meta":{{}},"request":{{}}}}'

    statuses = [400, 401, 403, 404, 429, 500, 503, '"429"', "true"]
    assert [s for s in statuses if retry_refused(error(s))] == [429, 500, 503]
    assert not retry_refused("pong")


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


def test_htx_refusals_worth_asking_again_are_its_limits_and_its_op_error() -> None:
    from purpleflea.venues.htx.connection import refusal, retry_refused

    def reply(code: object) -> bytes:
        answer = f'{{"op":"sub","cid":"1","topic":"t","ts":1,"err-code":{code},"err-msg":"m"}}'
        return gzip.compress(answer.encode(), mtime=0)

    codes = [2001, 2002, 2004, 2010, 2011, 2012, 2030, 2040, '"2004"', "true"]
    assert all(refusal(reply(c)) is not None for c in codes)
    assert [c for c in codes if retry_refused(reply(c))] == [2004, 2030, '"2004"']
    op_error = gzip.compress(b'{"op":"error","ts":1789670081489}', mtime=0)
    assert refusal(op_error) is not None
    assert retry_refused(op_error)
    # An ack, a repeated subscription, a ping and a push are no refusals.
    for code in (0, '"0"', 2014):
        assert refusal(reply(code)) is None
    assert refusal(gzip.compress(b'{"op":"ping","ts":"1"}', mtime=0)) is None
    assert not retry_refused(gzip.compress(b'{"op":"ping","ts":"1"}', mtime=0))


async def test_binance_refusing_its_subscribe_is_one_error_and_the_lost_stream_handed_over(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Binance's stream requests have four error codes (websocket-market-streams, "Error
    # Messages"), each naming a malformed request; the fake answers our SUBSCRIBE with
    # {"error":{"code":2,"msg":"Invalid request: unknown variable"},"id":1}. Before, it was a
    # warning at every connection. Its LIST_SUBSCRIPTIONS answer then lacks our stream: that
    # frame is read as a refusal too, but is the connection's close notice, so it is warned
    # and handed over (ingest/handover.py), never sorted as a second wrong request.
    from purpleflea.ingest import handover

    monkeypatch.setattr(handover, "OVERLAP", 0.05)
    caplog.set_level(logging.DEBUG, logger="purpleflea.ingest")
    said = '{"code":2,"msg":"Invalid request: unknown variable"}'
    async with (
        FakeExchange(Binance(), faults=REFUSING) as fake,
        Feeds([spec_for("binance_usdm", "binance_usdm", fake.url)]) as run,
    ):
        await run.wait_for(lambda: run.stats["binance_usdm"].handovers >= 2)
    stats = run.stats["binance_usdm"].snapshot()
    assert fake.connections >= 2
    assert stats["rejected"] == [said]  # the SUBSCRIBE's, once, though every connection got it
    assert "refused_retry" not in stats["errors"]
    errors = _ours(caplog, logging.ERROR)
    assert len(errors) == 1, errors
    assert said in errors[0]
    warnings = _ours(caplog, logging.WARNING)
    assert any("no longer subscribed" in w for w in warnings), warnings


def test_binance_refusals_are_never_worth_asking_again() -> None:
    from purpleflea.venues.binance.connection import refusal, retry_refused

    replies = [
        '{"code":0,"msg":"Unknown property","id":1}',
        '{"code":1,"msg":"Invalid value type: expected Boolean"}',
        '{"error":{"code":2,"msg":"Invalid request: unknown variable"},"id":1}',
        '{"code":3,"msg":"Invalid JSON: expected value at line 1 column 1"}',
    ]
    assert all(refusal(reply) is not None for reply in replies)
    assert not any(retry_refused(reply) for reply in replies)


def test_htx_delivery_coin_refused_alone_is_given_up_and_the_others_stay() -> None:
    # The delivery endpoint subscribes one coin a sub; HTX echoes the cid and the topic.
    from purpleflea.ingest.resubscribe import Resubscriber
    from purpleflea.venues.htx.connection import BATCHING, subscribe

    resubscriber = Resubscriber(BATCHING)
    sent = resubscriber.start(subscribe(["BTC", "OLD"], "BTC"))
    assert [json.loads(m).get("cid") for m in sent] == ["1", "2", "1"]  # contract_info: as is

    def answer(cid: str, coin: str, code: int, text: str = "") -> bytes:
        topic = f"public.{coin}.liquidation_orders"
        reply = {"op": "sub", "cid": cid, "topic": topic, "ts": 1, "err-code": code}
        return gzip.compress(json.dumps({**reply, "err-msg": text}).encode(), mtime=0)

    assert resubscriber.answer(answer("1", "BTC", 0)) is None  # an ack
    step = resubscriber.answer(answer("2", "OLD", 2011, "Contract doesn't exist."))
    assert step is not None
    assert step.given_up == ("public.OLD.liquidation_orders",)
    assert step.send == ()
    # Repeated subscription: live, nothing refused.
    resubscriber.start(subscribe(["ETH"]))
    assert resubscriber.answer(answer("3", "ETH", 2014, "Repeated subscription.")) is None


def test_htx_delivery_liveness_refused_is_not_said_to_be_asked_again(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # The delivery connection's contract_info sub (its liveness) is no coin of the
    # resubscriber's: refused as wrong, it is not given up and asked again as a coin is, but
    # the ERROR said so ("it is given up on this connection and asked again after 60 s").
    from purpleflea.ingest import received_frames
    from purpleflea.ingest.catalog import Catalogs
    from purpleflea.ingest.connection_stats import ConnectionStats
    from purpleflea.ingest.feeds import build_feeds

    [spec] = [s for s in build_feeds(Catalogs(), ["htx"]) if s.batching is not None]
    stats = ConnectionStats(spec.name, exchange=spec.exchange, url=spec.url)
    reply = {"op": "sub", "cid": "1", "topic": "public.BTC.contract_info", "ts": 1}
    frame = gzip.compress(
        json.dumps({**reply, "err-code": 2011, "err-msg": "Contract doesn't exist."}).encode()
    )
    caplog.set_level(logging.DEBUG, logger="purpleflea.ingest")
    received_frames._refused(spec, frame, stats)
    [error] = _ours(caplog, logging.ERROR)
    assert "2011: Contract doesn't exist." in error
    assert "asked again after" not in error, error
    assert "not asked again" in error
