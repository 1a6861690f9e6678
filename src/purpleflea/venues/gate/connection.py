"""Gate futures' ``futures.public_liquidates`` connections, one per settle currency.

One socket serves one settlement family: USDT-, BTC- and (since Gate's changelog of
2026-08-19) USD1-settled perpetuals such as ``BTC_USD1`` each have their own URL, and a
contract of another family is acknowledged but never delivered.

The only clock in a connection spec: Gate wants the current time in its messages.

Every socket opens with ``X-Gate-Size-Decimal: 1``: without it Gate pushes futures sizes as
integers truncated toward zero, so a liquidation of 0.7 contracts of a contract that trades in
fractions arrives as 0 and one of 1.7 as 1 (Gate's futures WebSocket notes; the header also
turns the sizes into decimal strings, which the normalizer reads). Gate has announced the
integer pushes will be retired.
"""

from __future__ import annotations

import functools
import time

from purpleflea.model import Catalog, Instrument
from purpleflea.venues._catalog import quantos_at
from purpleflea.venues._connection import (
    as_text,
    compact_json,
    containing,
    error_object_code_in,
    json_object,
)
from purpleflea.venues.gate.catalog import BTC_INVERSE
from purpleflea.venues.gate.constants import EXCHANGE
from purpleflea.venues.gate.normalizer import CHANNEL
from purpleflea.venues.venue import Connection

#: Sizes as decimal strings instead of integers truncated toward zero.
SIZE_DECIMAL = ("X-Gate-Size-Decimal", "1")

URLS = {
    "usdt": "wss://fx-ws.gateio.ws/v4/ws/usdt",
    "btc": "wss://fx-ws.gateio.ws/v4/ws/btc",
    "usd1": "wss://fx-ws.gateio.ws/v4/ws/usd1",
}


#: The liveness channel (docs/live.md, "Keeping each connection alive"): the ticker of each
#: family's BTC perpetual, on the same socket. Gate's futures WebSocket v4 docs ("Tickers API":
#: ``futures.tickers``, payload the contract list; notify ``{"time":..,"time_ms":..,"channel":
#: "futures.tickers","event":"update","result":[{"contract":"BTC_USDT","last":..,
#: "mark_price":..,"index_price":..,..}]}``) state no cadence; recorded pushes (tardis-node
#: test/mappers.test.ts, 2020-2022) carry ``result`` as a list, a list in a list, or a bare
#: object, and one ETC_USD push with a 24 h volume of 0 shows it is pushed without trades (the
#: mark and index prices move). The BTC contracts trade every second.
TICKERS = "futures.tickers"
LIVENESS_CONTRACTS = {"usdt": "BTC_USDT", "btc": "BTC_USD", "usd1": "BTC_USD1"}
#: Seconds without a liquidation or a ticker push before a connection counts as silent: the
#: ticker's cadence is undocumented, so a margin of minutes over a BTC contract's seconds.
DATA_TIMEOUT = 120.0


def subscribe(now: float | None = None, settle: str = "usdt") -> tuple[str, ...]:
    """The liquidations of every contract, then the family's BTC ticker (liveness)."""
    stamp = int(time.time() if now is None else now)
    message = {"time": stamp, "channel": CHANNEL, "event": "subscribe", "payload": ["!all"]}
    ticker = {
        "time": stamp,
        "channel": TICKERS,
        "event": "subscribe",
        "payload": [LIVENESS_CONTRACTS[settle]],
    }
    return (compact_json(message), compact_json(ticker))


def ticker_push(frame: bytes | str) -> bool:
    """A ``futures.tickers`` update (its subscribe ack, ``"event":"subscribe"``, is not one)."""
    message = containing(frame, TICKERS)
    return (
        message is not None
        and message.get("channel") == TICKERS
        and message.get("event") == "update"
        and message.get("result") is not None
    )


def btc_price(frame: bytes | str, catalog: Catalog) -> list[Instrument] | None:
    """The catalog's BTC-settled quantos at the BTC price a ``futures.tickers`` push gives
    ``BTC_USD``'s ``mark_price``; None for any other frame ([] for a push without it).

    A BTC-settled contract other than ``BTC_USD`` (``ETH_USD``) is a quanto whose liquidation
    is worth contracts x ``quanto_multiplier`` x price in BTC (:mod:`.catalog`): its dollars
    move with BTC's price, which the catalog takes from ``BTC_USD``'s mark at the hourly fetch.
    ``BTC_USD``'s ticker is the ``gate_btc`` socket's liveness channel, so its mark is applied
    as it comes. ``result`` is read as a list, a list in a list or a bare object: the shapes
    recorded for the channel (tardis-node test/mappers.test.ts).
    """
    message = containing(frame, TICKERS)
    if message is None or message.get("channel") != TICKERS or message.get("event") != "update":
        return None
    result = message.get("result")
    rows = result if isinstance(result, list) else [result]
    flat = [row for item in rows for row in (item if isinstance(item, list) else [item])]
    marks = [
        row.get("mark_price")
        for row in flat
        if isinstance(row, dict) and row.get("contract") == BTC_INVERSE and "mark_price" in row
    ]
    return quantos_at(EXCHANGE, BTC_INVERSE, marks[-1], catalog) if marks else []


def ping(now: float | None = None) -> str:
    return compact_json(
        {"time": int(time.time() if now is None else now), "channel": "futures.ping"}
    )


def refusal(frame: bytes | str) -> str | None:
    """Gate's reply with an ``error`` object (``{"code":2,"message":"unknown contract .."}``;
    acks carry ``"error":null``) or a ``result`` of ``{"status":"failed"}``."""
    message = json_object(frame)
    if message is None:
        return None
    if message.get("error") is not None:
        return as_text(message["error"])
    result = message.get("result")
    if isinstance(result, dict) and result.get("status") == "failed":
        return as_text(message)
    return None


#: Gate's websocket error code worth asking again: 3 "Server side error happened". Its other
#: codes name something wrong in the request: 1 "Invalid request body format", 2 "Invalid
#: argument provided" (an unknown contract), 4 "Authentication fail" (Gate's WebSocket v4
#: docs, "Error": one table for every channel, as copied from Gate's page in a public
#: mirror).
RETRYABLE_CODES = frozenset({3})


#: Whether Gate's refusal ``frame`` (an ``error`` object beside ``result``) may pass when asked
#: again on a new connection; a ``{"status":"failed"}`` result with no error object says
#: nothing more, and is taken as the request's fault.
retry_refused = error_object_code_in(RETRYABLE_CODES)


def connections(instruments: Catalog) -> list[Connection]:
    del instruments  # "!all" subscribes to every contract
    return [
        Connection(
            name=f"{EXCHANGE}_{settle}",
            exchange=EXCHANGE,
            url=url,
            subscribe=functools.partial(subscribe, settle=settle),
            keepalive=ping,
            keepalive_interval=20.0,
            silence_timeout=60.0,
            headers=(SIZE_DECIMAL,),
            refusal=refusal,
            retry_refused=retry_refused,
            liveness=ticker_push,
            data_timeout=DATA_TIMEOUT,
            # Only the BTC-settled list has quantos, priced in BTC (its ticker is BTC_USD's).
            contracts=btc_price if settle == "btc" else None,
        )
        for settle, url in URLS.items()
    ]
