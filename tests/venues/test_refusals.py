"""Every venue connection reads its exchange's error replies as refusals, and nothing else.

A refusal (a bad or delisted topic, a subscription over a limit) leaves the socket open and
quiet; the runner counts and logs what ``Connection.refusal`` reads (tests/ingest/
test_live_feeds.py runs it against the fake exchanges). Here: the replies each exchange
sends, and that no ack, pong or recorded frame is mistaken for one (a false refusal would
bury real ones in warnings).
"""

from __future__ import annotations

import gzip

import pytest

from purpleflea.ingest import feeds
from tests.fakes.harness import catalogs_for_tests, recorded_frames

SPECS = {spec.name: spec for spec in feeds.build_feeds(catalogs_for_tests())}

# (connection, frame, what the refusal reads or None). Error shapes: Binance's servers
# (``error`` object) and its docs' Error Messages (``code``/``msg``); Bybit v5 acks
# (``success``/``ret_msg``, bybit-api's WebsocketFailedTopicSubscriptionConfirmationEvent);
# OKX and Bitget ``event: error``; Gate's ``error`` object beside ``result``; HTX's
# ``err-code`` (a public client's recorded ack of public.*.liquidation_orders has 0; the
# codes of its docs' "Response code (Err-Code)" table);
# Kraken Futures ``subscribed_failed`` (its futures-websocket reference) and
# ``event: error``; Deribit JSON-RPC errors; the dYdX indexer's
# ``type: error`` (its socks service's text for an invalid market); BitMEX ``error``.
CASES: list[tuple[str, str | bytes, str | None]] = [
    ("binance_usdm", '{"result":null,"id":1}', None),
    (
        "binance_usdm",
        '{"error":{"code":2,"msg":"Invalid request: unknown variable"},"id":1}',
        '{"code":2,"msg":"Invalid request: unknown variable"}',
    ),
    ("binance_coinm", '{"code":0,"msg":"Unknown property","id":1}', "0: Unknown property"),
    ("binance_usdm", '{"result":["!forceOrder@arr"],"id":2}', None),
    # Stream names are case-insensitive at Binance (the docs write them lower case): a list
    # echoing ours in another case still holds it, and replacing the connection would cut a
    # healthy feed every keepalive.
    ("binance_usdm", '{"result":["!forceorder@arr"],"id":2}', None),
    (
        "binance_coinm",
        '{"result":[],"id":2}',
        "!forceOrder@arr is no longer subscribed: LIST_SUBSCRIPTIONS answered []",
    ),
    ("bybit_linear", '{"success":true,"ret_msg":"","conn_id":"c","op":"subscribe"}', None),
    ("bybit_linear", '{"success":true,"ret_msg":"pong","conn_id":"c","op":"ping"}', None),
    (
        "bybit_inverse",
        '{"success":false,"ret_msg":"error:handler not found","conn_id":"c","op":"subscribe"}',
        "subscribe: error:handler not found",
    ),
    ("okx", "pong", None),
    ("okx", '{"event":"subscribe","arg":{"channel":"liquidation-orders","instType":"SWAP"}}', None),
    ("okx", '{"event":"error","code":"60012","msg":"Invalid request"}', "60012: Invalid request"),
    ("bitget", "pong", None),
    ("bitget", '{"event":"error","code":"30001","msg":"bad subscribe"}', "30001: bad subscribe"),
    (
        "gate_usdt",
        '{"time":1,"channel":"futures.public_liquidates","event":"subscribe",'
        '"error":null,"result":{"status":"success"}}',
        None,
    ),
    ("gate_btc", '{"time":1,"channel":"futures.pong","event":"","result":null}', None),
    (
        "gate_usd1",
        '{"time":1,"channel":"futures.public_liquidates","event":"subscribe",'
        '"error":{"code":2,"message":"unknown contract"},"result":{"status":"failed"}}',
        '{"code":2,"message":"unknown contract"}',
    ),
    (
        "htx_linear",
        gzip.compress(
            b'{"op":"sub","cid":"1","topic":"public.*.liquidation_orders","ts":1789670081489,'
            b'"err-code":0}',
            mtime=0,
        ),
        None,
    ),
    ("htx_coin", gzip.compress(b'{"op":"ping","ts":"1789676355591"}', mtime=0), None),
    (
        "htx_futures",
        gzip.compress(b'{"op":"sub","cid":"1","err-code":2010,"err-msg":"Topic error."}', mtime=0),
        "2010: Topic error.",
    ),
    # HTX's "Repeated subscription." (2014): the topic is live, nothing is refused; its
    # ``op: error`` (an internal error, no code) is a refusal ("Response code (Err-Code)" and
    # "Server return error code but remain connection" of its notification endpoints' docs).
    (
        "htx_linear",
        gzip.compress(
            b'{"op":"sub","cid":"1","topic":"public.*.liquidation_orders","ts":1789670081489,'
            b'"err-code":2014,"err-msg":"Repeated subscription."}',
            mtime=0,
        ),
        None,
    ),
    (
        "htx_coin",
        gzip.compress(b'{"op":"error","ts":1789670081489}', mtime=0),
        "op error: HTX's internal error, or a request it does not take (no code)",
    ),
    ("kraken_futures", '{"event":"subscribed","feed":"trade","product_ids":["PF_XBTUSD"]}', None),
    ("kraken_futures", '{"event":"info","version":1}', None),
    ("kraken_futures", '{"event":"subscribed","feed":"heartbeat"}', None),
    (
        "kraken_futures",
        '{"event":"subscribed_failed","feed":"trade","product_ids":["PF_NOPEUSD"]}',
        'subscribed_failed: {"feed":"trade","product_ids":["PF_NOPEUSD"]}',
    ),
    (
        "kraken_futures",
        '{"event":"error","message":"Invalid product id"}',
        "error: Invalid product id",
    ),
    ("deribit", '{"jsonrpc":"2.0","id":1,"result":"ok"}', None),
    (
        "deribit",
        '{"jsonrpc":"2.0","id":2,"error":{"message":"Invalid params","code":-32602}}',
        '{"message":"Invalid params","code":-32602}',
    ),
    ("dydx_v4", '{"type":"connected","connection_id":"c","message_id":0}', None),
    (
        "dydx_v4",
        '{"type":"error","message":"Invalid subscription id for channel: (v4_trades-XYZ-USD)",'
        '"connection_id":"c","message_id":1}',
        "Invalid subscription id for channel: (v4_trades-XYZ-USD)",
    ),
    ("bitmex", '{"success":true,"subscribe":"liquidation","request":{}}', None),
    ("bitmex", "pong", None),
    (
        "bitmex",
        '{"status":400,"error":"Unknown table: liquidatio"}',
        "400: Unknown table: liquidatio",
    ),
]


@pytest.mark.parametrize(("connection", "frame", "expected"), CASES)
def test_each_exchange_s_error_reply_is_a_refusal_and_its_acks_are_not(
    connection: str, frame: str | bytes, expected: str | None
) -> None:
    refusal = SPECS[connection].refusal
    assert refusal is not None
    assert refusal(frame) == expected


def test_every_connection_reads_refusals_and_no_recorded_frame_is_one() -> None:
    frames = recorded_frames()
    refused = {SPECS[connection].exchange for connection, _, expected in CASES if expected}
    assert refused == {spec.exchange for spec in SPECS.values()}
    for name, spec in SPECS.items():
        assert spec.refusal is not None, name
        for frame in frames.get(name.split("#")[0], []):
            assert spec.refusal(frame) is None, (name, frame[:200])
