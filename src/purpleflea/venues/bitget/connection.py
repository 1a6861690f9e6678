"""Bitget UTA v3's ``liquidation`` topic connection (shared/EXCHANGES.md, Bitget)."""

from __future__ import annotations

from purpleflea.model import Catalog
from purpleflea.venues._connection import compact_json, containing, error_code_in, event_error
from purpleflea.venues.bitget.constants import EXCHANGE
from purpleflea.venues.bitget.normalizer import TOPIC
from purpleflea.venues.venue import Connection

URL = "wss://ws.bitget.com/v3/ws/public"


#: The liveness channel (docs/live.md, "Keeping each connection alive"): BTCUSDT's ticker, an
#: argument of the same subscribe. The UTA v3 push is ``{"action":"snapshot","arg":{"instType":
#: "usdt-futures","topic":"ticker","symbol":"BTCUSDT"},"data":[{"lastPrice":..,"markPrice":..,
#: "indexPrice":..,..}],"ts":..}`` (recorded 2026-04-28 in tardis-node test/mappers.test.ts,
#: "map bitget-futures messages", beside the recorded liquidation push). The sources at hand
#: state no cadence; a ticker carries the mark and index prices, which move every second.
TICKER = "ticker"
LIVENESS_ARG = {"instType": "usdt-futures", "topic": TICKER, "symbol": "BTCUSDT"}
#: Seconds without a liquidation or a ticker push before the connection counts as silent: the
#: cadence is undocumented, so a margin of minutes over BTCUSDT's seconds.
DATA_TIMEOUT = 120.0


def subscribe() -> tuple[str, ...]:
    args: list[dict[str, str]] = [
        {"instType": kind, "topic": TOPIC}
        for kind in ("usdt-futures", "coin-futures", "usdc-futures")
    ]
    return (compact_json({"op": "subscribe", "args": [*args, LIVENESS_ARG]}),)


def ticker_push(frame: bytes | str) -> bool:
    """A ``ticker`` push (its subscribe ack, ``{"event":"subscribe","arg":..}``, has no data)."""
    message = containing(frame, TICKER)
    if message is None or "data" not in message or "event" in message:
        return False
    arg = message.get("arg")
    return isinstance(arg, dict) and arg.get("topic") == TICKER


#: Bitget's websocket error codes worth asking again, on a new connection: 30006 "request too
#: many" and 30007 "request over limit, connection close" (Bitget's WebSocket error codes,
#: bitgetlimited.github.io/apidoc/en/spot/#websocket-error-code, the table ccxt PR 19041 took
#: its ws errors from), 429 "Too Many Requests" and 40015 "System is abnormal, please try again
#: later" (the UTA page, bitget.com/api-doc/uta/error-code/websocket, as copied in
#: sebastianganser/Bitget_API @ c21262e, uta/error-code/websocket.md). Every other refusal of
#: our subscribe names something wrong in it (30001 "channel does not exist": a v3 server
#: answers ``{"event":"error","code":30001,"msg":"{\"instType\":..,\"topic\":..} doesn't
#: exist"}``, naming the argument; 30002 illegal request, 30003 invalid op, 30016 param error;
#: 30004/30005/30011-30015 are logins we never make): asking again gets the same answer.
RETRYABLE_REFUSALS = frozenset({"30006", "30007", "429", "40015"})

#: Whether Bitget's refusal ``frame`` may pass when asked again on a new connection.
retry_refused = error_code_in(RETRYABLE_REFUSALS)

#: "Websocket will be forcibly disconnected every 24 hours, please add the reconnection
#: mechanism in your code" (Bitget's API changelog, "[Nov 22,2024] Websocket connection limit
#: update", bitget.com/api-doc/common/changelog, beside the 30 s ``ping`` and the 2 min cut
#: without one; read as 24 h of each connection's life, as Binance states its own, since the
#: page names no time of day): the runner connects the replacement a minute before
#: (ingest/handover.py), as for Binance. Bitget has no REST source to repair a reconnect's
#: gap, so a close met by a reconnect lost what was pushed until the new subscribe was
#: answered, once a day.
LIFETIME = 24 * 3600.0
HANDOVER_LEAD = 60.0


def connections(instruments: Catalog) -> list[Connection]:
    del instruments  # one topic per product type carries every contract
    return [
        Connection(
            name=EXCHANGE,
            exchange=EXCHANGE,
            url=URL,
            subscribe=subscribe(),
            keepalive="ping",
            keepalive_interval=25.0,
            silence_timeout=90.0,
            refusal=event_error,
            retry_refused=retry_refused,
            liveness=ticker_push,
            data_timeout=DATA_TIMEOUT,
            lifetime=LIFETIME,
            handover_lead=HANDOVER_LEAD,
        )
    ]
