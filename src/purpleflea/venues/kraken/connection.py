"""Kraken Futures' ``trade`` feed connection (shared/EXCHANGES.md, Kraken Futures)."""

from __future__ import annotations

from collections.abc import Sequence

from purpleflea.model import Catalog
from purpleflea.venues._connection import (
    as_text,
    compact_json,
    json_object,
    listed,
    mentions,
    symbols_of,
)
from purpleflea.venues.kraken.constants import EXCHANGE
from purpleflea.venues.venue import Batching, Connection, Reply

URL = "wss://futures.kraken.com/ws/v1"


def trades(product_ids: Sequence[str]) -> str:
    return compact_json({"event": "subscribe", "feed": "trade", "product_ids": list(product_ids)})


def subscribe(product_ids: Sequence[str]) -> tuple[str, ...]:
    # The heartbeat feed lets the 30 s watchdog tell a quiet trade feed from a dead socket.
    # Kraken gives no cadence ("publishes a heartbeat message at timed intervals", its
    # futures-websocket heartbeat page); one public client measured {"feed":"heartbeat",
    # "time":..} every 10 s (2026-09-01, code index id 70353722505): three a watchdog. A
    # capture of the heartbeats' "time" on an otherwise idle socket would settle it.
    return (trades(product_ids), compact_json({"event": "subscribe", "feed": "heartbeat"}))


def topics(message: str) -> tuple[str, ...] | None:
    """The product ids of one of our trade subscribes (None: another message)."""
    return listed(message, ("feed", "trade"), "product_ids")


def untagged(product_ids: tuple[str, ...], tag: str) -> str:
    del tag  # Kraken Futures requests carry no id; answers come in the order of requests
    return trades(product_ids)


def reply(frame: bytes | str) -> Reply | None:
    """Kraken Futures' answer to a trade subscribe: ``{"event":"subscribed","feed":"trade",
    "product_ids":[..]}``, or a refusal. Its trade feed reference (docs.kraken.com,
    futures-websocket/trade, "Response Error") lists ``Invalid product id`` as the error of a
    bad product, an ``{"event":"error"}`` that names no product of the request, and does not
    say whether the other products took: the request is taken as refused whole, and split
    until the bad product is alone (a request that did take is acked, and its products
    deliver; one subscribed twice only replays its ``trade_snapshot``, which dedupe drops)."""
    if not mentions(frame, "event"):
        return None  # trades and heartbeats are "feed" frames
    message = json_object(frame)
    if message is None:
        return None
    event = message.get("event")
    if event in ("subscribed", "subscribed_failed") and message.get("feed") == "trade":
        products = message.get("product_ids")
        products = products if isinstance(products, list) else []
        if event == "subscribed":
            # Any product of the batch tells which batch took (one ack or one per product).
            return Reply(refused=False, topic=str(products[0]) if products else None)
        # A refusal names the bad product only when it is the request's one product.
        return Reply(refused=True, topic=str(products[0]) if len(products) == 1 else None)
    if event in ("error", "alert"):
        return Reply(refused=True)
    return None


#: Splits a refused trade subscribe in halves until the bad product is alone.
BATCHING = Batching(topics=topics, message=untagged, reply=reply)


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

    return [
        Connection(
            EXCHANGE,
            EXCHANGE,
            URL,
            messages,
            silence_timeout=30.0,
            refusal=refusal,
            batching=BATCHING,
        )
    ]
