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

import time

from purpleflea.model import Catalog
from purpleflea.venues._connection import as_text, compact_json, json_object
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


def subscribe(now: float | None = None) -> tuple[str, ...]:
    stamp = int(time.time() if now is None else now)
    message = {"time": stamp, "channel": CHANNEL, "event": "subscribe", "payload": ["!all"]}
    return (compact_json(message),)


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


def connections(instruments: Catalog) -> list[Connection]:
    del instruments  # "!all" subscribes to every contract
    return [
        Connection(
            name=f"{EXCHANGE}_{settle}",
            exchange=EXCHANGE,
            url=url,
            subscribe=subscribe,
            keepalive=ping,
            keepalive_interval=20.0,
            silence_timeout=60.0,
            headers=(SIZE_DECIMAL,),
            refusal=refusal,
        )
        for settle, url in URLS.items()
    ]
