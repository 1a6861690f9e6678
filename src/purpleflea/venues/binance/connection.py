"""Binance's ``!forceOrder@arr`` connections, one per exchange id (shared/EXCHANGES.md)."""

from __future__ import annotations

from purpleflea.model import Catalog
from purpleflea.venues._connection import compact_json
from purpleflea.venues.binance.constants import COINM, USDM
from purpleflea.venues.venue import Connection

# Trap 3: forceOrder moved to the /market split; the legacy URL connects but stays silent.
USDM_URL = "wss://fstream.binance.com/market/ws"
COINM_URL = "wss://dstream.binance.com/ws"


def subscribe() -> tuple[str, ...]:
    return (compact_json({"method": "SUBSCRIBE", "params": ["!forceOrder@arr"], "id": 1}),)


# Binance pings at the protocol level (websockets answers); the stream is a 1 s snapshot and
# can be quiet for minutes, so the watchdog is generous.


def usdm_connections(instruments: Catalog) -> list[Connection]:
    del instruments  # one stream carries every symbol
    return [Connection(USDM, USDM, USDM_URL, subscribe(), silence_timeout=300.0)]


def coinm_connections(instruments: Catalog) -> list[Connection]:
    del instruments
    return [Connection(COINM, COINM, COINM_URL, subscribe(), silence_timeout=900.0)]
