"""Kraken Futures' ``trade`` feed connection (shared/EXCHANGES.md, Kraken Futures)."""

from __future__ import annotations

from collections.abc import Sequence

from purpleflea.model import Catalog
from purpleflea.venues._connection import as_text, compact_json, json_object, mentions, symbols_of
from purpleflea.venues.kraken.constants import EXCHANGE
from purpleflea.venues.venue import Connection

URL = "wss://futures.kraken.com/ws/v1"


def subscribe(product_ids: Sequence[str]) -> tuple[str, ...]:
    # The heartbeat feed ticks every few seconds, so the watchdog can tell quiet from dead.
    return (
        compact_json({"event": "subscribe", "feed": "trade", "product_ids": list(product_ids)}),
        compact_json({"event": "subscribe", "feed": "heartbeat"}),
    )


#: Replies that refuse a request: ``subscribed_failed`` is the documented answer to a
#: subscribe that did not take (Kraken's futures-websocket reference lists ``subscribed``,
#: ``subscribed_failed``, ``unsubscribed``, ``unsubscribed_failed``); ``error`` and ``alert``
#: answer a request it could not read.
REFUSALS = ("subscribed_failed", "unsubscribed_failed", "error", "alert")


def refusal(frame: bytes | str) -> str | None:
    """Kraken Futures' ``{"event":"subscribed_failed","feed":"trade",..}`` or
    ``{"event":"error","message":"Invalid product id"}``."""
    if not mentions(frame, "event"):
        return None  # trades and heartbeats are "feed" frames
    message = json_object(frame)
    if message is None or message.get("event") not in REFUSALS:
        return None
    event = message.pop("event")
    return f"{as_text(event)}: {as_text(message.get('message', message))}"


def connections(instruments: Catalog) -> list[Connection]:
    def messages() -> tuple[str, ...]:
        return subscribe(symbols_of(instruments))

    return [Connection(EXCHANGE, EXCHANGE, URL, messages, silence_timeout=30.0, refusal=refusal)]
