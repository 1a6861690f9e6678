"""dYdX v4's ``v4_trades`` connections, one market per subscription (EXCHANGES.md, dYdX).

The indexer pings at the protocol level (every 30 s, a pong due within 10 s; websockets
answers), which the watchdog never sees, and 32 small markets can trade nothing for many
minutes: the watchdog then had to wait 600 s to call a dead connection dead. Each connection
also subscribes to ``v4_block_height`` (one message per block, about one a second; the
indexer's socks service allows one per connection, and maintained clients such as
nautilus_trader's dYdX adapter read it), so silence means a dead socket within a minute.
"""

from __future__ import annotations

from collections.abc import Sequence

from purpleflea.model import Catalog
from purpleflea.venues._connection import (
    as_text,
    chunks,
    compact_json,
    json_object,
    mentions,
    symbols_of,
)
from purpleflea.venues.dydx.constants import EXCHANGE
from purpleflea.venues.dydx.normalizer import CHANNEL
from purpleflea.venues.venue import Connection

URL = "wss://indexer.dydx.trade/v4/ws"
# The indexer refuses a 33rd v4_trades subscription on one connection (V4_TRADES_CHANNEL_LIMIT
# = 32 in dydxprotocol/v4-chain indexer/services/socks/src/config.ts, also in dYdX's rate
# limit notes); one market per message.
MARKETS_PER_CONNECTION = 32
#: The per-block heartbeat every connection subscribes to first.
HEARTBEAT = compact_json({"type": "subscribe", "channel": "v4_block_height"})


def subscribe(markets: Sequence[str]) -> tuple[str, ...]:
    trades = (compact_json({"type": "subscribe", "channel": CHANNEL, "id": m}) for m in markets)
    return (HEARTBEAT, *trades)


def refusal(frame: bytes | str) -> str | None:
    """The indexer's ``{"type":"error","message":"Invalid subscription id for channel: ..",..}``
    (an unknown or delisted market, a subscription over the per-connection limit)."""
    if not mentions(frame, "error"):
        return None  # every trade frame without a liquidation comes here
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
            silence_timeout=60.0,
            subscribe_pause=0.02,
            refusal=refusal,
        )
        for index, group in enumerate(groups)
    ]
