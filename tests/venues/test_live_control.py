"""Control frames live feeds send between liquidations: each is recognised (no event, no
FrameError, so not counted as a malformed liquidation), and the venue's errors among them are
read as refusals so they surface (tests/venues/test_refusals.py holds the subscribe errors).

Shapes: OKX docs-v5 "Notifications" (``notice`` 64008) and its channel-conn-count event; the
BitMEX welcome ``info``, an empty ``partial`` and its 429 error (bitmex.com/app/wsAPI);
Deribit's ``heartbeat`` (``test_request`` and plain) and a ``public/subscribe`` result
(docs.deribit.com); the dYdX indexer's ``subscribed`` with no trades yet and
``unsubscribed``; Kraken Futures' ``alert`` and ``heartbeat`` feed; empty pushes of every
batch venue (a quiet second); HTX's JSON ``ping``; Bybit's refusal of a symbol it does not
list; Binance's rate-limit reply.

Added with their sources: Deribit's subscribe answered with our channel left out
(``"result":[]``, adampointer/go-deribit issue 16, 2019-06-20) and its error object with
``data`` (docs.deribit.com "Error Codes": 10028 too_many_requests, 11050 bad_request); OKX's
60018 and 60014 in its error table's words (okx.com/docs-v5 "Error Code", WebSocket public);
the dYdX indexer's own error texts (dydxprotocol/v4-chain indexer/services/socks/src/lib/
subscription.ts: the per-channel subscribe rate limit, sent before it closes the socket, an
already-subscribed market, a failed initial fetch); Gate's code 3 "Server side error
happened" (its WebSocket v4 "Error" table).
"""

from __future__ import annotations

import gzip

import pytest

from purpleflea.ingest import feeds
from tests.fakes.harness import catalogs_for_tests

SPECS = {spec.name: spec for spec in feeds.build_feeds(catalogs_for_tests())}

#: (connection, frame, what its refusal reads: None for a frame that is no error)
FRAMES: list[tuple[str, str | bytes, str | None]] = [
    (
        "okx",
        '{"event":"notice","code":"64008","msg":"The connection will soon be closed for a service'
        ' upgrade. Please reconnect.","connId":"a4d3ae55"}',
        None,
    ),
    (
        "okx",
        '{"event":"channel-conn-count","channel":"liquidation-orders","connCount":"2","connId":"a4d3ae55"}',
        None,
    ),
    (
        "okx",
        '{"id":"1512","event":"subscribe","arg":{"channel":"liquidation-orders","instType":"SWAP"},"connId":"a4d3ae55"}',
        None,
    ),
    ("okx", '{"arg":{"channel":"liquidation-orders","instType":"SWAP"},"data":[]}', None),
    (
        "bitmex",
        '{"info":"Welcome to the BitMEX Realtime API.","version":"2.0.0","timestamp":"2026-09-10T00:00:00.000Z","docs":"https://www.bitmex.com/app/wsAPI","heartbeatEnabled":false,"limit":{"remaining":39}}',
        None,
    ),
    (
        "bitmex",
        '{"table":"liquidation","action":"partial","keys":["orderID"],"types":{"orderID":"guid"},"filter":{},"data":[]}',
        None,
    ),
    (
        "bitmex",
        '{"status":429,"error":"Rate limit exceeded, retry in 1 seconds.","meta":{"retryAfter":1},'
        '"request":{"op":"subscribe","args":"liquidation"}}',
        "429: Rate limit exceeded, retry in 1 seconds.",
    ),
    ("deribit", '{"jsonrpc":"2.0","method":"heartbeat","params":{"type":"test_request"}}', None),
    ("deribit", '{"jsonrpc":"2.0","method":"heartbeat","params":{"type":"heartbeat"}}', None),
    (
        "deribit",
        '{"jsonrpc":"2.0","id":1,"result":["trades.future.any.100ms"],"usIn":1,"usOut":2,"usDiff":1,"testnet":false}',
        None,
    ),
    (
        "deribit",
        '{"jsonrpc":"2.0","method":"subscription","params":{"channel":"trades.future.any.100ms","data":[]}}',
        None,
    ),
    (
        "dydx_v4",
        '{"type":"subscribed","connection_id":"c","message_id":1,"channel":"v4_trades","id":"BTC-USD","contents":{"trades":[]}}',
        None,
    ),
    (
        "dydx_v4",
        '{"type":"unsubscribed","connection_id":"c","message_id":2,"channel":"v4_trades","id":"BTC-USD"}',
        None,
    ),
    (
        "dydx_v4",
        '{"type":"channel_data","connection_id":"c","message_id":3,"id":"BTC-USD","channel":"v4_trades","version":"2.1.0","contents":{"trades":[]}}',
        None,
    ),
    (
        "kraken_futures",
        '{"event":"alert","message":"Bad websocket message"}',
        "alert: Bad websocket message",
    ),
    ("kraken_futures", '{"feed":"heartbeat","time":1789000000000}', None),
    ("kraken_futures", '{"feed":"trade_snapshot","product_id":"PF_XBTUSD","trades":[]}', None),
    (
        "gate_usdt",
        '{"time":1789000000,"time_ms":1789000000123,"channel":"futures.public_liquidates","event":"update","result":[]}',
        None,
    ),
    (
        "htx_linear",
        gzip.compress(
            b'{"op":"notify","topic":"public.*.liquidation_orders","ts":1,"data":[]}', mtime=0
        ),
        None,
    ),
    ("htx_linear", b'{"op":"ping","ts":"1789000000000"}', None),
    (
        "bitget",
        '{"event":"subscribe","arg":{"instType":"usdt-futures","topic":"liquidation"}}',
        None,
    ),
    (
        "bitget",
        '{"action":"snapshot","arg":{"instType":"usdt-futures","topic":"liquidation"},"data":[],"ts":1}',
        None,
    ),
    ("bybit_linear", '{"topic":"allLiquidation.BTCUSDT","type":"snapshot","ts":1,"data":[]}', None),
    (
        "bybit_linear",
        '{"success":false,"ret_msg":"Invalid symbol :[allLiquidation.FOOUSDT]","conn_id":"c",'
        '"req_id":"","op":"subscribe"}',
        "subscribe: Invalid symbol :[allLiquidation.FOOUSDT]",
    ),
    (
        "deribit",
        '{"jsonrpc":"2.0","id":2,"result":[],"usIn":1561053224590810,"usOut":1561053224590859,'
        '"usDiff":49,"testnet":false}',
        "public/subscribe answered []: trades.future.any.100ms is not subscribed",
    ),
    (
        "deribit",
        '{"jsonrpc":"2.0","id":2,"error":{"message":"too_many_requests","code":10028},'
        '"usIn":1704153600000000,"usOut":1704153600001234,"usDiff":1234,"testnet":false}',
        '{"message":"too_many_requests","code":10028}',
    ),
    (
        "deribit",
        '{"jsonrpc":"2.0","error":{"code":11050,"message":"bad_request",'
        '"data":{"reason":"value must be a list","param":"channels"}},"id":2}',
        '{"code":11050,"message":"bad_request","data":{"reason":"value must be a list",'
        '"param":"channels"}}',
    ),
    (
        "okx",
        '{"event":"error","msg":"Wrong URL or channel:liquidation-orders,instType:SWAPP '
        "doesn't exist. Please use the correct URL, channel and parameters referring to API "
        'document.","code":"60018","connId":"a4d3ae55"}',
        "60018: Wrong URL or channel:liquidation-orders,instType:SWAPP doesn't exist. Please "
        "use the correct URL, channel and parameters referring to API document.",
    ),
    (
        "okx",
        '{"event":"error","msg":"Requests too frequent.","code":"60014","connId":"a4d3ae55"}',
        "60014: Requests too frequent.",
    ),
    (
        "dydx_v4",
        '{"type":"error","message":"Too many subscribe attempts for channel v4_trades-BTC-USD. '
        'Please  reconnect and try again.","connection_id":"c","message_id":3}',
        "Too many subscribe attempts for channel v4_trades-BTC-USD. Please  reconnect and try "
        "again.",
    ),
    (
        "dydx_v4",
        '{"type":"error","message":"Invalid subscribe message: already subscribed '
        '(v4_trades-BTC-USD)","connection_id":"c","message_id":4}',
        "Invalid subscribe message: already subscribed (v4_trades-BTC-USD)",
    ),
    (
        "dydx_v4",
        '{"type":"error","message":"Internal error, could not fetch data for subscription: '
        'v4_trades.","connection_id":"c","message_id":5}',
        "Internal error, could not fetch data for subscription: v4_trades.",
    ),
    (
        "gate_usdt",
        '{"time":1789000000,"time_ms":1789000000123,"channel":"futures.public_liquidates",'
        '"event":"subscribe","payload":["!all"],"error":{"code":3,'
        '"message":"Server side error happened"},"result":{"status":"failed"}}',
        '{"code":3,"message":"Server side error happened"}',
    ),
    ("binance_usdm", '{"result":null,"id":3}', None),
    (
        "binance_usdm",
        '{"id":4,"status":429,"error":{"code":-1003,"msg":"Too many requests"}}',
        '{"code":-1003,"msg":"Too many requests"}',
    ),
]


@pytest.mark.parametrize(("connection", "frame", "refusal"), FRAMES)
def test_control_frames_yield_nothing_and_errors_surface_as_refusals(
    connection: str, frame: str | bytes, refusal: str | None
) -> None:
    spec = SPECS[connection]
    assert spec.normalize(frame) == []
    assert spec.refusal is not None
    assert spec.refusal(frame) == refusal


#: The venue's words that pass when asked again on a new connection (a rate limit, its own
#: error), of the refusals above, by connection; every other refusal above names a wrong
#: request (or, on a venue without ``retry_refused``, is only counted).
ASKED_AGAIN = {
    ("deribit", "10028"),
    ("okx", "60014"),
    ("gate_usdt", "Server side error happened"),
    ("bitmex", "429"),
}


@pytest.mark.parametrize(("connection", "frame", "refusal"), [f for f in FRAMES if f[2]])
def test_refusals_worth_asking_again_are_told_from_wrong_requests(
    connection: str, frame: str | bytes, refusal: str
) -> None:
    spec = SPECS[connection]
    wanted = any(c == connection and words in refusal for c, words in ASKED_AGAIN)
    if spec.retry_refused is None:
        assert not wanted, f"{connection} cannot ask again"
        return
    assert spec.retry_refused(frame) is wanted
