"""Bybit v5's ``allLiquidation.{symbol}`` connections, linear and inverse (EXCHANGES.md)."""

from __future__ import annotations

from collections.abc import Sequence

from purpleflea.model import Catalog
from purpleflea.venues._connection import as_text, chunks, compact_json, json_object, symbols_of
from purpleflea.venues.bybit.constants import EXCHANGE
from purpleflea.venues.venue import Connection

URLS = {
    "linear": "wss://stream.bybit.com/v5/public/linear",
    "inverse": "wss://stream.bybit.com/v5/public/inverse",
}
# Bybit caps one subscribe request's args at 21,000 characters; 200 topics stay far below.
TOPICS_PER_MESSAGE = 200


def subscribe(symbols: Sequence[str]) -> tuple[str, ...]:
    topics = [f"allLiquidation.{symbol}" for symbol in symbols]
    return tuple(
        compact_json({"op": "subscribe", "args": batch})
        for batch in chunks(topics, TOPICS_PER_MESSAGE)
    )


def refusal(frame: bytes | str) -> str | None:
    """Bybit's failed request: ``{"success":false,"ret_msg":..,"op":"subscribe",..}``."""
    message = json_object(frame)
    if message is None or message.get("success") is not False:
        return None
    return f"{as_text(message.get('op'))}: {as_text(message.get('ret_msg'))}"


def connections(instruments: Catalog) -> list[Connection]:
    """One connection per category, subscribing to every catalog symbol of its kind."""
    found = []
    for kind, url in URLS.items():

        def messages(kind: str = kind) -> tuple[str, ...]:
            return subscribe(symbols_of(instruments, kind))

        found.append(
            Connection(
                name=f"{EXCHANGE}_{kind}",
                exchange=EXCHANGE,
                url=url,
                subscribe=messages,
                keepalive='{"op":"ping"}',
                keepalive_interval=20.0,
                silence_timeout=60.0,
                subscribe_pause=0.05,
                refusal=refusal,
            )
        )
    return found
