"""Bitget UTA v3's ``liquidation`` topic connection (shared/EXCHANGES.md, Bitget)."""

from __future__ import annotations

from purpleflea.model import Catalog
from purpleflea.venues._connection import compact_json, event_error
from purpleflea.venues.bitget.constants import EXCHANGE
from purpleflea.venues.bitget.normalizer import TOPIC
from purpleflea.venues.venue import Connection

URL = "wss://ws.bitget.com/v3/ws/public"


def subscribe() -> tuple[str, ...]:
    args = [
        {"instType": kind, "topic": TOPIC}
        for kind in ("usdt-futures", "coin-futures", "usdc-futures")
    ]
    return (compact_json({"op": "subscribe", "args": args}),)


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
        )
    ]
