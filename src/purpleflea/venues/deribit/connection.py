"""Deribit's ``trades.future.any.100ms`` connection over JSON-RPC (EXCHANGES.md, Deribit)."""

from __future__ import annotations

from purpleflea.model import Catalog
from purpleflea.venues._connection import as_text, compact_json, json_object, mentions
from purpleflea.venues.deribit.constants import EXCHANGE
from purpleflea.venues.venue import Connection

URL = "wss://www.deribit.com/ws/api/v2"
# Deribit's set_heartbeat minimum is 10 s; it then sends test_request every interval.
HEARTBEAT_S = 30
#: Every future's trades, perpetual and dated, inverse and linear, of every currency:
#: ``trades.{kind}.{currency}.{interval}`` with kind ``future`` and currency ``any``
#: (docs.deribit.com, subscriptions/trades). One channel instead of one per instrument, so a
#: future listed after we connect is carried too, and an expired one leaves nothing behind
#: (Deribit acks an unknown instrument channel with an empty result, silently).
CHANNEL = "trades.future.any.100ms"


def subscribe() -> tuple[str, ...]:
    heartbeat = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "public/set_heartbeat",
        "params": {"interval": HEARTBEAT_S},
    }
    subscribe = {
        "jsonrpc": "2.0",
        "id": 2,
        "method": "public/subscribe",
        "params": {"channels": [CHANNEL]},
    }
    return (compact_json(heartbeat), compact_json(subscribe))


def answer(frame: bytes | str) -> str | None:
    """``{"method":"heartbeat","params":{"type":"test_request"}}`` -> ``public/test``."""
    if "test_request" not in (frame if isinstance(frame, str) else frame.decode("latin-1")):
        return None
    message = json_object(frame)
    if message is None or message.get("method") != "heartbeat":
        return None  # not a ping; the normalizer will judge the frame
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
    """One connection carrying every future's trades; the catalog is not needed."""
    del instruments
    return [
        Connection(
            name=EXCHANGE,
            exchange=EXCHANGE,
            url=URL,
            subscribe=subscribe(),
            answer=answer,
            refusal=refusal,
            silence_timeout=2.5 * HEARTBEAT_S,
        )
    ]
