"""dYdX v4's ``v4_trades`` connections, one market per subscription (EXCHANGES.md, dYdX)."""

from __future__ import annotations

from collections.abc import Sequence

from purpleflea.model import Catalog
from purpleflea.venues._connection import as_text, chunks, compact_json, json_object, symbols_of
from purpleflea.venues.dydx.constants import EXCHANGE
from purpleflea.venues.dydx.normalizer import CHANNEL
from purpleflea.venues.venue import Connection

URL = "wss://indexer.dydx.trade/v4/ws"
# dYdX subscribes one market per message; spreading markets over connections keeps each
# connection's subscription burst and message rate modest.
MARKETS_PER_CONNECTION = 32


def subscribe(markets: Sequence[str]) -> tuple[str, ...]:
    return tuple(compact_json({"type": "subscribe", "channel": CHANNEL, "id": m}) for m in markets)


def refusal(frame: bytes | str) -> str | None:
    """The indexer's ``{"type":"error","message":"Invalid subscription id for channel: ..",..}``
    (an unknown or delisted market, a subscription over the per-connection limit)."""
    message = json_object(frame)
    if message is None or message.get("type") != "error":
        return None
    return as_text(message.get("message"))


def connections(instruments: Catalog) -> list[Connection]:
    """One connection per :data:`MARKETS_PER_CONNECTION` markets of the bundled/fetched
    catalog (the split is fixed at build time; new markets join on the next build)."""
    groups = chunks(symbols_of(instruments), MARKETS_PER_CONNECTION) or [[]]
    return [
        Connection(
            name=EXCHANGE if index == 0 else f"{EXCHANGE}#{index + 1}",
            exchange=EXCHANGE,
            url=URL,
            subscribe=subscribe(group),
            silence_timeout=600.0,
            subscribe_pause=0.02,
            refusal=refusal,
        )
        for index, group in enumerate(groups)
    ]
