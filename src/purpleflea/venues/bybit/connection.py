"""Bybit v5's ``allLiquidation.{symbol}`` connections, linear and inverse (EXCHANGES.md)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from purpleflea.model import Catalog
from purpleflea.venues._connection import (
    ALL_MARKET_DATA_TIMEOUT,
    as_text,
    chunks,
    compact_json,
    containing,
    json_object,
    listed,
    mentions,
    symbols_of,
)
from purpleflea.venues._placement import Placement
from purpleflea.venues.bybit.constants import EXCHANGE
from purpleflea.venues.venue import Batching, Connection, Reply

URLS = {
    "linear": "wss://stream.bybit.com/v5/public/linear",
    "inverse": "wss://stream.bybit.com/v5/public/inverse",
}
# "Regardless of Perpetual, Futures, Options or Spot, for one public connection, you cannot
# have length of "args" array over 21,000 characters ... No args limit for Futures and Spread
# for now" (bybit-exchange/docs docs/v5/websocket/wss-authentication.mdx, "Public channel -
# Args limits", @ 072c197d; since 84aada61 of 2023-05-25). The zh-TW page says how it counts:
# "對於單個連接, args裡的數組元素長度總和不能超過21,000個字符", for a single connection, the
# lengths of the args' elements summed. "No args limit" for futures is a count (spot: 10 a
# request; options: 2,000 a connection). So the limit is per connection, over every topic it
# subscribes, not per request: a linear catalog of 805 symbols (a third-party live count of
# 2026-09-18) is about 19,600 characters of ``allLiquidation.`` topics at 9-10 characters a
# symbol, 22,000 with the quotes and commas of the array, and each listing adds to it. Each
# topic is counted with its quotes and comma (the stricter reading of "length of args
# array"), and a category's topics are spread over as many connections as keep each under the
# limit (venues/_placement.py).
ARGS_CHARS = 21_000
#: Characters kept free on every connection for its liveness ticker (``tickers.BTCUSD``).
TICKER_RESERVE = 64
#: 200 topics a message (about 5,000 characters) keeps each request far below the limit too.
TOPICS_PER_MESSAGE = 200


#: The topic of a symbol's liquidations, before its symbol.
LIQUIDATIONS = "allLiquidation."


def subscribe(symbols: Sequence[str], liveness: str | None = None) -> tuple[str, ...]:
    """``allLiquidation`` of ``symbols`` in batches; then, with ``liveness`` (a symbol), its
    ticker alone (docs/live.md, "Keeping each connection alive")."""
    topics = [LIQUIDATIONS + symbol for symbol in symbols]
    batches = chunks(topics, TOPICS_PER_MESSAGE)
    if liveness is not None:
        batches.append([f"{TICKERS}{liveness}"])
    return tuple(compact_json({"op": "subscribe", "args": batch}) for batch in batches)


#: The liveness channel of the inverse connection: BTCUSD's ticker on the same socket. Bybit's
#: docs (docs/v5/websocket/public/ticker.mdx): topic ``tickers.{symbol}``, "Push frequency:
#: 100ms", a ``snapshot`` then ``delta`` pushes of the fields that changed: ``{"topic":
#: "tickers.BTCUSD","type":"delta","data":{"symbol":"BTCUSD","markPrice":..,"indexPrice":..},
#: "cs":..,"ts":..}``. The mark and index prices move every second, traded or not.
TICKERS = "tickers."
LIVENESS_SYMBOLS = {"inverse": "BTCUSD"}


def liveness_symbol(kind: str, symbols: Sequence[str]) -> str | None:
    """The category's liveness symbol if it has one and subscribes it (else its first)."""
    wanted = LIVENESS_SYMBOLS.get(kind)
    if wanted is None or not symbols:
        return None
    return wanted if wanted in symbols else symbols[0]


def ticker_push(frame: bytes | str) -> bool:
    """A ``tickers.*`` push (acks carry no topic, pongs ``"op":"ping"``)."""
    message = containing(frame, TICKERS)
    if message is None or "data" not in message:
        return False
    topic = message.get("topic")
    return isinstance(topic, str) and topic.startswith(TICKERS)


def topics(message: str) -> tuple[str, ...] | None:
    """The topics of one of our subscribe messages (None: not a subscribe)."""
    return listed(message, ("op", "subscribe"), "args")


def tagged(topics: tuple[str, ...], tag: str) -> str:
    """A subscribe of ``topics`` whose ``req_id`` Bybit echoes in its answer."""
    return compact_json({"req_id": tag, "op": "subscribe", "args": list(topics)})


def reply(frame: bytes | str) -> Reply | None:
    """Bybit's answer to a subscribe: ``{"success":false,"ret_msg":"error:handler not
    found,topic:allLiquidation.XYZUSDT","req_id":"3","op":"subscribe"}``.

    Bybit refuses the whole message over one bad topic and subscribes none of the others
    (ccxt issue 30284, a raw probe of 2026-09-05 on v5/public/linear: the good topic of a
    refused pair never delivered; public clients measured the same for unknown topics), and
    names the first bad topic after ``topic:``, or, for a symbol it does not list, in
    brackets: ``"ret_msg":"Invalid symbol :[orderbook.50.BTC/USDT]"`` (the form public Bybit
    clients match to drop the symbol, for orderbook, publicTrade, tickers and allLiquidation
    topics alike). ``already subscribed`` names a topic that is live: the rest is sent again
    and nothing is given up.
    """
    if not mentions(frame, "success"):
        return None  # every liquidation frame comes here
    message = json_object(frame)
    if message is None or message.get("op") != "subscribe" or "success" not in message:
        return None
    tag = message.get("req_id")
    text = str(message.get("ret_msg") or "")
    topic = named_topic(text)
    return Reply(
        refused=message["success"] is False,
        tag=str(tag) if tag else None,
        topic=topic or None,
        live="already subscribed" in text,
    )


def named_topic(text: str) -> str:
    """The topic a Bybit refusal's text names: after ``topic:`` (``error:handler not
    found,topic:allLiquidation.XYZUSDT``), or the first inside brackets (``Invalid symbol
    :[allLiquidation.XYZUSDT]``); empty when it names none (``args size >10``)."""
    _, found, named = text.rpartition("topic:")
    if found:
        return named.strip()
    _, opened, inside = text.partition("[")
    listed, closed, _ = inside.partition("]")
    if not (opened and closed):
        return ""
    return listed.split(",", 1)[0].strip()


#: Splits a refused subscribe: the rest without the topic Bybit names.
BATCHING = Batching(topics=topics, message=tagged, reply=reply)


def refusal(frame: bytes | str) -> str | None:
    """Bybit's failed request: ``{"success":false,"ret_msg":..,"op":"subscribe",..}``."""
    message = json_object(frame)
    if message is None or message.get("success") is not False:
        return None
    return f"{as_text(message.get('op'))}: {as_text(message.get('ret_msg'))}"


def subscribed(frame: bytes | str) -> bool:
    """Bybit's answer to a subscribe, accepted or refused (:func:`reply`)."""
    return reply(frame) is not None


#: Seconds without a liquidation before a category's connection counts as silent (its pongs
#: do not count). The watchdog is per connection, over every symbol it subscribes to. Linear
#: is the whole linear catalog (hundreds of contracts; the bundled fallback still holds BTC,
#: ETH, SOL and DOGE), and ``allLiquidation`` pushes every liquidation: no recording of this
#: feed is at hand, so it takes the bound measured on another venue's five coins
#: (``ALL_MARKET_DATA_TIMEOUT``), which a larger, unthrottled feed should only undercut.
#: Inverse is a handful of contracts (BTCUSD, ETHUSD, XRPUSD, ...), and one coin alone was
#: quiet for up to two hours in the measured day: quiet for hours is normal there, and a
#: liquidation watchdog long enough to hold would say nothing. Its BTCUSD ticker (100 ms)
#: feeds the watchdog instead: a minute without a liquidation or a ticker push is no market.
DATA_TIMEOUTS: dict[str, float | None] = {"linear": ALL_MARKET_DATA_TIMEOUT, "inverse": 60.0}


def topic_chars(topic: str) -> float:
    """What a topic takes of a connection's :data:`ARGS_CHARS`: itself, quoted, and a comma."""
    return len(topic) + 3


def connections(instruments: Catalog) -> list[Connection]:
    """Each category's catalog symbols over as few connections as keep each one's args under
    :data:`ARGS_CHARS`; symbols listed since the start go to the connection with the most room,
    or to one of their own, opened by the ingest (``Connection.more``)."""
    found = []
    for kind, url in URLS.items():
        found.extend(_category(instruments, kind, url))
    return found


def _category(instruments: Catalog, kind: str, url: str) -> list[Connection]:
    plan = Placement(
        [LIQUIDATIONS + symbol for symbol in symbols_of(instruments, kind)],
        ARGS_CHARS - TICKER_RESERVE,
        cost=topic_chars,
    )

    def messages(index: int) -> Callable[[], tuple[str, ...]]:
        def rebuilt() -> tuple[str, ...]:
            listed = symbols_of(instruments, kind)
            plan.place(LIQUIDATIONS + symbol for symbol in listed)
            mine = set(plan.groups[index])
            symbols = [s for s in listed if LIQUIDATIONS + s in mine]
            return subscribe(symbols, liveness_symbol(kind, listed))

        return rebuilt

    def connection(index: int) -> Connection:
        # A connection opened for a few contracts listed later is no whole market: no
        # liquidation watchdog there, unless a liveness channel feeds it.
        whole = index < plan.built or kind in LIVENESS_SYMBOLS
        return Connection(
            name=f"{EXCHANGE}_{kind}" if index == 0 else f"{EXCHANGE}_{kind}#{index + 1}",
            exchange=EXCHANGE,
            url=url,
            subscribe=messages(index),
            keepalive='{"op":"ping"}',
            keepalive_interval=20.0,
            silence_timeout=60.0,
            subscribe_pause=0.05,
            refusal=refusal,
            batching=BATCHING,
            subscribed=subscribed,
            data_timeout=DATA_TIMEOUTS[kind] if whole else None,
            liveness=ticker_push if kind in LIVENESS_SYMBOLS else None,
            more=more if index == 0 else None,
        )

    def more() -> tuple[Connection, ...]:
        plan.place(LIQUIDATIONS + symbol for symbol in symbols_of(instruments, kind))
        return tuple(connection(index) for index in range(plan.built, len(plan.groups)))

    return [connection(index) for index in range(plan.built)]
