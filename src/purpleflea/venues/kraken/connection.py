"""Kraken Futures' ``trade`` feed connection (shared/EXCHANGES.md, Kraken Futures)."""

from __future__ import annotations

from collections.abc import Sequence

from purpleflea.model import Catalog
from purpleflea.venues._connection import as_text, compact_json, json_object, symbols_of
from purpleflea.venues.kraken.constants import EXCHANGE
from purpleflea.venues.venue import Connection

URL = "wss://futures.kraken.com/ws/v1"


def subscribe(product_ids: Sequence[str]) -> tuple[str, ...]:
    # The heartbeat feed ticks every few seconds, so the watchdog can tell quiet from dead.
    return (
        compact_json({"event": "subscribe", "feed": "trade", "product_ids": list(product_ids)}),
        compact_json({"event": "subscribe", "feed": "heartbeat"}),
    )


def refusal(frame: bytes | str) -> str | None:
    """Kraken Futures' ``{"event":"error","message":"Invalid product id"}`` (or ``alert``)."""
    message = json_object(frame)
    if message is None or message.get("event") not in ("error", "alert"):
        return None
    return f"{as_text(message['event'])}: {as_text(message.get('message'))}"


def connections(instruments: Catalog) -> list[Connection]:
    def messages() -> tuple[str, ...]:
        return subscribe(symbols_of(instruments))

    return [Connection(EXCHANGE, EXCHANGE, URL, messages, silence_timeout=30.0, refusal=refusal)]
