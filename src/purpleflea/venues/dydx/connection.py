"""dYdX v4's ``v4_trades`` connections, one market per subscription (EXCHANGES.md, dYdX).

The indexer pings at the protocol level (every 30 s, a pong due within 10 s; websockets
answers), which the watchdog never sees, and 32 small markets can trade nothing for many
minutes: the watchdog then had to wait 600 s to call a dead connection dead. Each connection
also subscribes to ``v4_block_height`` (one message per block, about one a second; the
indexer's socks service allows one per connection, and maintained clients such as
nautilus_trader's dYdX adapter read it), so silence means a dead socket within a minute.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Sequence

from purpleflea.model import Catalog
from purpleflea.venues._connection import (
    as_text,
    compact_json,
    json_object,
    mentions,
    symbols_of,
)
from purpleflea.venues._placement import Placement
from purpleflea.venues.dydx.constants import EXCHANGE
from purpleflea.venues.dydx.normalizer import CHANNEL
from purpleflea.venues.venue import Batching, Connection, Reply

log = logging.getLogger("purpleflea.venues.dydx")

URL = "wss://indexer.dydx.trade/v4/ws"
# The indexer refuses a 33rd v4_trades subscription on one connection (V4_TRADES_CHANNEL_LIMIT
# = 32 in dydxprotocol/v4-chain indexer/services/socks/src/config.ts, also in dYdX's rate
# limit notes); one market per message.
MARKETS_PER_CONNECTION = 32
#: The per-block heartbeat every connection subscribes to first.
HEARTBEAT = compact_json({"type": "subscribe", "channel": "v4_block_height"})


def trades(market: str) -> str:
    return compact_json({"type": "subscribe", "channel": CHANNEL, "id": market})


def subscribe(markets: Sequence[str]) -> tuple[str, ...]:
    return (HEARTBEAT, *(trades(m) for m in markets))


def topics(message: str) -> tuple[str, ...] | None:
    """The market of one of our ``v4_trades`` subscribes (None: another message)."""
    request = json_object(message)
    if request is None or request.get("channel") != CHANNEL:
        return None
    return (str(request.get("id")),)


def one_market(markets: tuple[str, ...], tag: str) -> str:
    """A subscribe of one market (the indexer takes one ``id`` a message and echoes no
    request id; every batch here is one market, so a retry is one too)."""
    del tag
    if len(markets) != 1:
        raise ValueError(f"dYdX subscribes one market a message, not {markets!r}")
    return trades(markets[0])


#: The market an error names in its text: ``Invalid subscription id for channel:
#: (v4_trades-XYZ-USD)``.
_NAMED = re.compile(re.escape(f"({CHANNEL}-") + r"([^)]+)\)")


def reply(frame: bytes | str) -> Reply | None:
    """The indexer's answer to a ``v4_trades`` subscribe, read for the market it names.

    The socks service (dydxprotocol/v4-chain indexer/services/socks/src/lib/subscription.ts)
    answers each subscribe on its own, in the order its REST fetch of the market's recent
    trades completes, not the order of requests: ``subscribed`` with the market's ``id``, or
    ``{"type":"error",..}``. A failed fetch (``Internal error, could not fetch data for
    subscription: v4_trades.``) leaves the market unsubscribed although it exists; newer
    indexers name it in ``channel`` and ``id`` (helpers/message.ts createErrorMessage), an
    unknown market is named in the text. Such a market is asked for again on the retry timer.
    A failed fetch that names neither is placed once every other market has been answered:
    the market left is the refused one. Any other error that names no market (the
    per-connection limit, asked again only at the risk of being dropped for it) is only
    counted, never guessed at.
    """
    if not (mentions(frame, "subscribed") or mentions(frame, "error")):
        return None  # trades and block heights come here
    message = json_object(frame)
    if message is None:
        return None
    kind = message.get("type")
    if kind == "subscribed" and message.get("channel") == CHANNEL:
        return Reply(refused=False, topic=str(message.get("id")))
    if kind != "error":
        return None
    text = as_text(message.get("message"))
    named = _NAMED.search(text)
    if message.get("channel") == CHANNEL and isinstance(message.get("id"), str):
        market: str | None = str(message["id"])
    else:
        market = named.group(1) if named else None
    if market is None:
        # A failed fetch names the channel but not the market: it is the one market left
        # without an answer once the others are answered (BATCHING is not ``ordered``).
        return Reply(refused=True) if FETCH_FAILED in text else None
    return Reply(refused=True, topic=market, live="already subscribed" in text)


#: The indexer's answer to a subscribe whose initial fetch failed: ``Internal error, could not
#: fetch data for subscription: v4_trades.`` (indexer/services/socks/src/lib/subscription.ts,
#: the market named nowhere in the error message its helpers/message.ts builds).
FETCH_FAILED = f"could not fetch data for subscription: {CHANNEL}."

#: One market a message: a refused market is given up alone and asked for again later. The
#: indexer answers each market when its fetch completes, in no set order.
BATCHING = Batching(topics=topics, message=one_market, reply=reply, ordered=False)


def refusal(frame: bytes | str) -> str | None:
    """The indexer's ``{"type":"error","message":"Invalid subscription id for channel: ..",..}``
    (an unknown or delisted market, a subscription over the per-connection limit)."""
    if not mentions(frame, "error"):
        return None  # every trade frame without a liquidation comes here
    message = json_object(frame)
    if message is None or message.get("type") != "error":
        return None
    return as_text(message.get("message"))


#: Places left free across a process's connections for markets dYdX lists after the feeds
#: are built (permissionless listings, several a week at times): the markets at build time
#: are spread evenly over enough connections to leave at least this many. Past them a new
#: connection is opened (the indexer documents no cap on connections, only 32 ``v4_trades`` a
#: connection and 2 subscribes a second per connection and market: docs.dydx.exchange,
#: Indexer Websocket, "Rate Limiting"; socks ``config.ts`` ``V4_TRADES_CHANNEL_LIMIT``).
SPARE_PLACES = 16


def split(markets: Sequence[str]) -> list[list[str]]:
    """``markets`` in contiguous groups of even size, as few as leave :data:`SPARE_PLACES`
    free places under :data:`MARKETS_PER_CONNECTION` a connection (one group at least)."""
    return _placement(markets).groups


def _placement(markets: Sequence[str]) -> Placement:
    return Placement(markets, MARKETS_PER_CONNECTION, spare=SPARE_PLACES)


def connections(instruments: Catalog) -> list[Connection]:
    """The catalog's markets when the feeds are built, split evenly over connections of at
    most :data:`MARKETS_PER_CONNECTION`, with :data:`SPARE_PLACES` free places between them.

    dYdX lists markets at any time. Each subscribe is rebuilt from the live catalog: a market
    listed since takes a free place of the connection with the most (in the order they were
    first seen, so none moves to another connection later), and the runner asks for it on the
    same socket (``Connection.follow_catalog``). With no free place left it goes to a
    connection of its own, which the first connection's ``more`` hands the ingest to open
    (before, it waited for the next start of the process)."""
    plan = _placement(symbols_of(instruments))

    def listed() -> None:
        plan.place(symbols_of(instruments))

    def messages(index: int) -> Callable[[], tuple[str, ...]]:
        def rebuilt() -> tuple[str, ...]:
            listed()
            return subscribe(plan.groups[index])

        return rebuilt

    def connection(index: int) -> Connection:
        return Connection(
            name=EXCHANGE if index == 0 else f"{EXCHANGE}#{index + 1}",
            exchange=EXCHANGE,
            url=URL,
            subscribe=messages(index),
            silence_timeout=60.0,
            subscribe_pause=0.02,
            refusal=refusal,
            batching=BATCHING,
            more=more if index == 0 else None,
        )

    def more() -> tuple[Connection, ...]:
        listed()
        return tuple(connection(index) for index in range(plan.built, len(plan.groups)))

    return [connection(index) for index in range(plan.built)]
