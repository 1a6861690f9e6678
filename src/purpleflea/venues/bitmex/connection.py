"""BitMEX's ``liquidation`` table connection (shared/EXCHANGES.md, BitMEX)."""

from __future__ import annotations

from purpleflea.model import Catalog, Instrument
from purpleflea.venues._catalog import quantos_at
from purpleflea.venues._connection import as_text, compact_json, containing, json_object
from purpleflea.venues.bitmex.constants import EXCHANGE
from purpleflea.venues.bitmex.normalizer import TABLE
from purpleflea.venues.venue import Connection

URL = "wss://ws.bitmex.com/realtime"


#: The liveness channel (docs/live.md, "Keeping each connection alive"): XBTUSD's row of the
#: ``instrument`` table, on the same socket ("instrument: Instrument updates including
#: turnover and bid/ask", BitMEX/api-connectors official-ws README). BitMEX documents no
#: cadence; recorded pushes (altangent/ccxws issue 98, 2019-11-12: ``{"table":"instrument",
#: "action":"update","data":[{"symbol":"XBTUSD","fairPrice":8773.99,"markPrice":8773.99,
#: "indicativeSettlePrice":8773.2,"timestamp":..}]}``, then open interest and volume rows)
#: came about every second: the mark price follows the index, traded or not.
INSTRUMENT = "instrument"
LIVENESS_TOPIC = f"{INSTRUMENT}:XBTUSD"
#: Seconds without a liquidation or an instrument push before the connection counts as
#: silent: the cadence is undocumented, so a margin of minutes over the recorded second.
DATA_TIMEOUT = 120.0


def subscribe() -> tuple[str, ...]:
    """The liquidation table, then XBTUSD's instrument row (liveness)."""
    return tuple(
        compact_json({"op": "subscribe", "args": [topic]}) for topic in (TABLE, LIVENESS_TOPIC)
    )


def instrument_push(frame: bytes | str) -> bool:
    """A push of the ``instrument`` table (``partial``, ``update``, ...; its subscribe answer,
    ``{"success":true,"subscribe":"instrument:XBTUSD",..}``, is not one)."""
    message = containing(frame, INSTRUMENT)
    return message is not None and message.get("table") == INSTRUMENT and "data" in message


def xbt_price(frame: bytes | str, catalog: Catalog) -> list[Instrument] | None:
    """The catalog's quanto contracts at the XBT price an ``instrument`` push gives XBTUSD's
    ``markPrice``; None for any other frame ([] for a push without it: a volume row).

    A quanto contract (ETHUSD) settles in XBT: its liquidation's USD size is contracts x
    ``multiplier`` x price in XBT, times XBT's USD price (EXCHANGES.md, BitMEX). The catalog
    takes that price as XBTUSD's mark when it is fetched (hourly), so in between a quanto's
    USD size moved with XBT's price since the fetch: 10 % off after a 10 % fall of XBT, the
    hour a cascade is on. XBTUSD's instrument row on this socket (the liveness channel)
    carries the mark as it moves (about every second, recorded): it is applied as it comes.
    """
    message = containing(frame, INSTRUMENT)
    if message is None or message.get("table") != INSTRUMENT:
        return None
    data = message.get("data")
    marks = [
        row.get("markPrice")
        for row in (data if isinstance(data, list) else [])
        if isinstance(row, dict) and row.get("symbol") == "XBTUSD" and "markPrice" in row
    ]
    return quantos_at(EXCHANGE, "XBTUSD", marks[-1], catalog) if marks else []


def refusal(frame: bytes | str) -> str | None:
    """BitMEX's ``{"status":400,"error":"Unknown table: ..","meta":{},"request":{..}}``."""
    message = json_object(frame)
    if message is None or message.get("error") is None:
        return None
    return f"{as_text(message.get('status'))}: {as_text(message['error'])}"


def retry_refused(frame: bytes | str) -> bool:
    """Whether BitMEX's refusal ``frame`` may pass when asked again on a new connection: a
    ``status`` of 429 (``{"status":429,"error":"Rate limit exceeded, retry in 1 seconds.",
    "meta":{"retryAfter":1},"request":{..}}``, bitmex.com/app/wsAPI; ccxt's BitMEX websocket
    maps "Rate limit exceeded" to RateLimitExceeded) or 5xx (BitMEX overloaded or down). A
    4xx other than 429 names something wrong in the request (400 ``Unknown table``)."""
    message = json_object(frame)
    status = message.get("status") if message is not None else None
    if not isinstance(status, int) or isinstance(status, bool):
        return False
    return status == 429 or 500 <= status < 600


def connections(instruments: Catalog) -> list[Connection]:
    del instruments  # one table carries every instrument
    return [
        Connection(
            name=EXCHANGE,
            exchange=EXCHANGE,
            url=URL,
            subscribe=subscribe(),
            keepalive="ping",
            keepalive_interval=10.0,
            silence_timeout=60.0,
            refusal=refusal,
            retry_refused=retry_refused,
            liveness=instrument_push,
            data_timeout=DATA_TIMEOUT,
            contracts=xbt_price,
        )
    ]
