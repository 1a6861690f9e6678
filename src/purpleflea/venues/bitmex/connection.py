"""BitMEX's ``liquidation`` table connection (shared/EXCHANGES.md, BitMEX)."""

from __future__ import annotations

from purpleflea.model import Catalog
from purpleflea.venues._connection import as_text, compact_json, json_object
from purpleflea.venues.bitmex.constants import EXCHANGE
from purpleflea.venues.bitmex.normalizer import TABLE
from purpleflea.venues.venue import Connection

URL = "wss://ws.bitmex.com/realtime"


def subscribe() -> tuple[str, ...]:
    return (compact_json({"op": "subscribe", "args": [TABLE]}),)


def refusal(frame: bytes | str) -> str | None:
    """BitMEX's ``{"status":400,"error":"Unknown table: ..","meta":{},"request":{..}}``."""
    message = json_object(frame)
    if message is None or message.get("error") is None:
        return None
    return f"{as_text(message.get('status'))}: {as_text(message['error'])}"


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
        )
    ]
