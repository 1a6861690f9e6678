"""Binance's ``!forceOrder@arr`` connections, one per exchange id (shared/EXCHANGES.md)."""

from __future__ import annotations

from purpleflea.model import Catalog
from purpleflea.venues._connection import as_text, compact_json, json_object
from purpleflea.venues.binance.constants import COINM, USDM
from purpleflea.venues.venue import Connection

# Trap 3: forceOrder moved to the /market split; the legacy URL connects but stays silent.
USDM_URL = "wss://fstream.binance.com/market/ws"
COINM_URL = "wss://dstream.binance.com/ws"


def subscribe() -> tuple[str, ...]:
    return (compact_json({"method": "SUBSCRIBE", "params": ["!forceOrder@arr"], "id": 1}),)


def refusal(frame: bytes | str) -> str | None:
    """Binance's error reply: ``{"error":{"code":2,"msg":..},"id":1}`` as servers send it, or
    the documented ``{"code":0,"msg":"Unknown property","id":1}``. An unknown stream name is
    not refused (``{"result":null}``): only the watchdog sees that one."""
    message = json_object(frame)
    if message is None:
        return None
    if message.get("error") is not None:
        return as_text(message["error"])
    if "code" in message and "msg" in message:
        return f"{as_text(message['code'])}: {as_text(message['msg'])}"
    return None


# Binance pings at the protocol level (websockets answers); the stream is a 1 s snapshot and
# can be quiet for minutes, so the watchdog is generous.


def usdm_connections(instruments: Catalog) -> list[Connection]:
    del instruments  # one stream carries every symbol
    return [Connection(USDM, USDM, USDM_URL, subscribe(), silence_timeout=300.0, refusal=refusal)]


def coinm_connections(instruments: Catalog) -> list[Connection]:
    del instruments
    return [
        Connection(COINM, COINM, COINM_URL, subscribe(), silence_timeout=900.0, refusal=refusal)
    ]
