"""Deribit's ``trades.{instrument}.100ms`` connection over JSON-RPC (EXCHANGES.md, Deribit)."""

from __future__ import annotations

import json
from collections.abc import Sequence

from purpleflea.model import Catalog
from purpleflea.venues._connection import as_text, compact_json, json_object, mentions, symbols_of
from purpleflea.venues.deribit.constants import EXCHANGE
from purpleflea.venues.venue import Connection

URL = "wss://www.deribit.com/ws/api/v2"
# Deribit's set_heartbeat minimum is 10 s; it then sends test_request every interval.
HEARTBEAT_S = 30


def subscribe(instruments: Sequence[str]) -> tuple[str, ...]:
    heartbeat = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "public/set_heartbeat",
        "params": {"interval": HEARTBEAT_S},
    }
    channels = [f"trades.{name}.100ms" for name in instruments]
    subscribe = {
        "jsonrpc": "2.0",
        "id": 2,
        "method": "public/subscribe",
        "params": {"channels": channels},
    }
    return (compact_json(heartbeat), compact_json(subscribe))


def answer(frame: bytes | str) -> str | None:
    """``{"method":"heartbeat","params":{"type":"test_request"}}`` -> ``public/test``."""
    if "test_request" not in (frame if isinstance(frame, str) else frame.decode("latin-1")):
        return None
    try:
        message = json.loads(frame)
    except ValueError:
        return None  # not a ping; the normalizer will judge the frame
    if not isinstance(message, dict) or message.get("method") != "heartbeat":
        return None
    params = message.get("params")
    if not isinstance(params, dict):
        return None
    if params.get("type") != "test_request":
        return None
    return compact_json({"jsonrpc": "2.0", "id": 9, "method": "public/test", "params": {}})


def refusal(frame: bytes | str) -> str | None:
    """A JSON-RPC error reply: ``{"jsonrpc":"2.0","id":2,"error":{"code":..,"message":..}}``."""
    if not mentions(frame, "error"):
        return None  # every trade frame without a liquidation comes here
    message = json_object(frame)
    if message is None or message.get("error") is None:
        return None
    return as_text(message["error"])


def connections(instruments: Catalog) -> list[Connection]:
    """One connection subscribing to every perpetual of the catalog (on each connect)."""

    def messages() -> tuple[str, ...]:
        return subscribe([s for s in symbols_of(instruments) if s.endswith("PERPETUAL")])

    return [
        Connection(
            name=EXCHANGE,
            exchange=EXCHANGE,
            url=URL,
            subscribe=messages,
            answer=answer,
            refusal=refusal,
            silence_timeout=2.5 * HEARTBEAT_S,
        )
    ]
