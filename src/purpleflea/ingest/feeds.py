"""The public liquidation connections of every exchange, as :class:`FeedSpec` data.

One function per exchange turns the exchange's instrument catalog into the specs of its
connections (URL, subscribe messages, keep-alive, ping answers, watchdog); :func:`build_feeds`
builds them for the enabled exchanges. Everything here is pure: no sockets, no clock except
the timestamps Gate wants in its messages. The facts come from shared/EXCHANGES.md.

Every connection has a name (``bybit_linear``, ``gate_btc``, ...) and :data:`URLS` maps each
name to its real endpoint; ``urls`` overrides any of them (tests point them at loopback).
Specs' normalizers hold the exchange's :class:`~purpleflea.ingest.catalog.LiveCatalog`, and
per-instrument subscriptions are computed on every connect, so catalog refreshes reach both
contract sizes and subscriptions without rebuilding a feed.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from purpleflea.ingest.catalog import Catalogs
from purpleflea.ingest.connection import FeedSpec, Messages, Normalize
from purpleflea.model import Catalog, VenueLiquidation
from purpleflea.venues import NORMALIZERS, Normalizer
from purpleflea.venues._frame import gunzip

log = logging.getLogger("purpleflea.ingest.feeds")

#: Real endpoint of every connection, by connection name.
URLS: dict[str, str] = {
    # Trap 3: forceOrder moved to the /market split; the legacy URL connects but stays silent.
    "binance_usdm": "wss://fstream.binance.com/market/ws",
    "binance_coinm": "wss://dstream.binance.com/ws",
    "bybit_linear": "wss://stream.bybit.com/v5/public/linear",
    "bybit_inverse": "wss://stream.bybit.com/v5/public/inverse",
    "okx": "wss://ws.okx.com:8443/ws/v5/public",
    "bitmex": "wss://ws.bitmex.com/realtime",
    "deribit": "wss://www.deribit.com/ws/api/v2",
    "dydx_v4": "wss://indexer.dydx.trade/v4/ws",
    "kraken_futures": "wss://futures.kraken.com/ws/v1",
    "bitget": "wss://ws.bitget.com/v3/ws/public",
    "gate_usdt": "wss://fx-ws.gateio.ws/v4/ws/usdt",
    "gate_btc": "wss://fx-ws.gateio.ws/v4/ws/btc",
    "htx_linear": "wss://api.hbdm.com/linear-swap-notification",
    "htx_coin": "wss://api.hbdm.com/swap-notification",
}

# Bybit caps one subscribe request's args at 21,000 characters; 200 topics stay far below.
BYBIT_TOPICS_PER_MESSAGE = 200
# dYdX subscribes one market per message; spreading markets over connections keeps each
# connection's subscription burst and message rate modest.
DYDX_MARKETS_PER_CONNECTION = 32
# Deribit's set_heartbeat minimum is 10 s; it then sends test_request every interval.
DERIBIT_HEARTBEAT_S = 30


def _json(value: object) -> str:
    return json.dumps(value, separators=(",", ":"))


def bind(normalizer: Normalizer, instruments: Catalog) -> Normalize:
    """``normalizer`` reading contracts from ``instruments`` (a live, refreshing catalog)."""

    def normalize(frame: bytes | str) -> list[VenueLiquidation]:
        return normalizer(frame, instruments)

    return normalize


def chunks(items: Sequence[str], size: int) -> list[list[str]]:
    return [list(items[i : i + size]) for i in range(0, len(items), size)]


def symbols_of(instruments: Catalog, kind: str | None = None) -> list[str]:
    """Sorted symbols of ``instruments`` (of one contract kind if given)."""
    return sorted(s for s, i in instruments.items() if kind is None or i.kind == kind)


# --- subscribe messages (pure) ---------------------------------------------------------------


def binance_subscribe() -> tuple[str, ...]:
    return (_json({"method": "SUBSCRIBE", "params": ["!forceOrder@arr"], "id": 1}),)


def bybit_subscribe(symbols: Sequence[str]) -> tuple[str, ...]:
    topics = [f"allLiquidation.{symbol}" for symbol in symbols]
    return tuple(
        _json({"op": "subscribe", "args": batch})
        for batch in chunks(topics, BYBIT_TOPICS_PER_MESSAGE)
    )


def okx_subscribe() -> tuple[str, ...]:
    args = [{"channel": "liquidation-orders", "instType": kind} for kind in ("SWAP", "FUTURES")]
    return (_json({"op": "subscribe", "args": args}),)


def bitmex_subscribe() -> tuple[str, ...]:
    return (_json({"op": "subscribe", "args": ["liquidation"]}),)


def deribit_subscribe(instruments: Sequence[str]) -> tuple[str, ...]:
    heartbeat = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "public/set_heartbeat",
        "params": {"interval": DERIBIT_HEARTBEAT_S},
    }
    channels = [f"trades.{name}.100ms" for name in instruments]
    subscribe = {
        "jsonrpc": "2.0",
        "id": 2,
        "method": "public/subscribe",
        "params": {"channels": channels},
    }
    return (_json(heartbeat), _json(subscribe))


def dydx_subscribe(markets: Sequence[str]) -> tuple[str, ...]:
    return tuple(_json({"type": "subscribe", "channel": "v4_trades", "id": m}) for m in markets)


def kraken_subscribe(product_ids: Sequence[str]) -> tuple[str, ...]:
    # The heartbeat feed ticks every few seconds, so the watchdog can tell quiet from dead.
    return (
        _json({"event": "subscribe", "feed": "trade", "product_ids": list(product_ids)}),
        _json({"event": "subscribe", "feed": "heartbeat"}),
    )


def bitget_subscribe() -> tuple[str, ...]:
    args = [
        {"instType": kind, "topic": "liquidation"}
        for kind in ("usdt-futures", "coin-futures", "usdc-futures")
    ]
    return (_json({"op": "subscribe", "args": args}),)


def gate_subscribe(now: float | None = None) -> tuple[str, ...]:
    stamp = int(time.time() if now is None else now)
    message = {
        "time": stamp,
        "channel": "futures.public_liquidates",
        "event": "subscribe",
        "payload": ["!all"],
    }
    return (_json(message),)


def gate_ping(now: float | None = None) -> str:
    return _json({"time": int(time.time() if now is None else now), "channel": "futures.ping"})


def htx_subscribe() -> tuple[str, ...]:
    return (_json({"op": "sub", "cid": "1", "topic": "public.*.liquidation_orders"}),)


# --- ping answers (pure) ---------------------------------------------------------------------


def deribit_answer(frame: bytes | str) -> str | None:
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
    return _json({"jsonrpc": "2.0", "id": 9, "method": "public/test", "params": {}})


def htx_answer(frame: bytes | str) -> str | None:
    """HTX's gzip ``{"op":"ping","ts":T}`` -> ``{"op":"pong","ts":T}`` (``{"ping":T}`` too)."""
    data = gunzip("htx", frame) if isinstance(frame, bytes) else frame.encode()
    if b"ping" not in data:
        return None
    try:
        message = json.loads(data)
    except ValueError:
        return None
    if not isinstance(message, dict):
        return None
    if message.get("op") == "ping":
        return _json({"op": "pong", "ts": message.get("ts")})
    if "ping" in message:
        return _json({"pong": message["ping"]})
    return None


# --- specs per exchange ----------------------------------------------------------------------

Urls = Mapping[str, str]
Builder = Callable[[Catalogs, Urls], list[FeedSpec]]


def _spec(
    name: str,
    exchange: str,
    catalogs: Catalogs,
    urls: Urls,
    subscribe: tuple[str, ...] | Messages,
    **timing: Any,
) -> FeedSpec:
    normalize = bind(NORMALIZERS[exchange], catalogs.get(exchange))
    base = name.split("#", 1)[0]  # "dydx_v4#2" shares dydx_v4's endpoint
    url = urls.get(name) or urls.get(base) or URLS[base]
    return FeedSpec(
        name=name, exchange=exchange, url=url, normalize=normalize, subscribe=subscribe, **timing
    )


def binance_feeds(catalogs: Catalogs, urls: Urls) -> list[FeedSpec]:
    # Binance pings at the protocol level (websockets answers); the stream is a 1 s snapshot
    # and can be quiet for minutes, so the watchdog is generous.
    return [
        _spec(
            "binance_usdm",
            "binance_usdm",
            catalogs,
            urls,
            binance_subscribe(),
            silence_timeout=300.0,
        ),
        _spec(
            "binance_coinm",
            "binance_coinm",
            catalogs,
            urls,
            binance_subscribe(),
            silence_timeout=900.0,
        ),
    ]


def bybit_feeds(catalogs: Catalogs, urls: Urls) -> list[FeedSpec]:
    instruments = catalogs.get("bybit")
    specs = []
    for kind in ("linear", "inverse"):

        def subscribe(kind: str = kind) -> tuple[str, ...]:
            return bybit_subscribe(symbols_of(instruments, kind))

        specs.append(
            _spec(
                f"bybit_{kind}",
                "bybit",
                catalogs,
                urls,
                subscribe,
                keepalive='{"op":"ping"}',
                keepalive_interval=20.0,
                silence_timeout=60.0,
                subscribe_pause=0.05,
            )
        )
    return specs


def okx_feeds(catalogs: Catalogs, urls: Urls) -> list[FeedSpec]:
    # OKX drops a connection after 30 s without traffic: a text ping keeps it (and the
    # watchdog) fed with pongs.
    return [
        _spec(
            "okx",
            "okx",
            catalogs,
            urls,
            okx_subscribe(),
            keepalive="ping",
            keepalive_interval=20.0,
            silence_timeout=60.0,
        )
    ]


def bitmex_feeds(catalogs: Catalogs, urls: Urls) -> list[FeedSpec]:
    return [
        _spec(
            "bitmex",
            "bitmex",
            catalogs,
            urls,
            bitmex_subscribe(),
            keepalive="ping",
            keepalive_interval=10.0,
            silence_timeout=60.0,
        )
    ]


def deribit_feeds(catalogs: Catalogs, urls: Urls) -> list[FeedSpec]:
    instruments = catalogs.get("deribit")

    def subscribe() -> tuple[str, ...]:
        return deribit_subscribe([s for s in symbols_of(instruments) if s.endswith("PERPETUAL")])

    return [
        _spec(
            "deribit",
            "deribit",
            catalogs,
            urls,
            subscribe,
            answer=deribit_answer,
            silence_timeout=2.5 * DERIBIT_HEARTBEAT_S,
        )
    ]


def dydx_feeds(catalogs: Catalogs, urls: Urls) -> list[FeedSpec]:
    """One connection per :data:`DYDX_MARKETS_PER_CONNECTION` markets of the bundled/fetched
    catalog (the split is fixed at build time; new markets join on the next build)."""
    markets = symbols_of(catalogs.get("dydx_v4"))
    groups = chunks(markets, DYDX_MARKETS_PER_CONNECTION) or [[]]
    return [
        _spec(
            "dydx_v4" if index == 0 else f"dydx_v4#{index + 1}",
            "dydx_v4",
            catalogs,
            urls,
            dydx_subscribe(group),
            silence_timeout=600.0,
            subscribe_pause=0.02,
        )
        for index, group in enumerate(groups)
    ]


def kraken_feeds(catalogs: Catalogs, urls: Urls) -> list[FeedSpec]:
    instruments = catalogs.get("kraken_futures")

    def subscribe() -> tuple[str, ...]:
        return kraken_subscribe(symbols_of(instruments))

    return [
        _spec("kraken_futures", "kraken_futures", catalogs, urls, subscribe, silence_timeout=30.0)
    ]


def bitget_feeds(catalogs: Catalogs, urls: Urls) -> list[FeedSpec]:
    return [
        _spec(
            "bitget",
            "bitget",
            catalogs,
            urls,
            bitget_subscribe(),
            keepalive="ping",
            keepalive_interval=25.0,
            silence_timeout=90.0,
        )
    ]


def gate_feeds(catalogs: Catalogs, urls: Urls) -> list[FeedSpec]:
    return [
        _spec(
            f"gate_{settle}",
            "gate",
            catalogs,
            urls,
            gate_subscribe,
            keepalive=gate_ping,
            keepalive_interval=20.0,
            silence_timeout=60.0,
        )
        for settle in ("usdt", "btc")
    ]


def htx_feeds(catalogs: Catalogs, urls: Urls) -> list[FeedSpec]:
    # HTX pings every few seconds and expects each answered; its pings feed the watchdog.
    return [
        _spec(
            f"htx_{kind}",
            "htx",
            catalogs,
            urls,
            htx_subscribe(),
            answer=htx_answer,
            silence_timeout=30.0,
        )
        for kind in ("linear", "coin")
    ]


#: Connection builders by exchange id (the ids of ``purpleflea.venues.NORMALIZERS``).
BUILDERS: dict[str, Builder] = {
    "binance_usdm": lambda c, u: binance_feeds(c, u)[:1],
    "binance_coinm": lambda c, u: binance_feeds(c, u)[1:],
    "bybit": bybit_feeds,
    "okx": okx_feeds,
    "bitmex": bitmex_feeds,
    "deribit": deribit_feeds,
    "dydx_v4": dydx_feeds,
    "kraken_futures": kraken_feeds,
    "bitget": bitget_feeds,
    "gate": gate_feeds,
    "htx": htx_feeds,
}


def available() -> list[str]:
    """Exchanges that have both a connection builder and a normalizer."""
    return [exchange for exchange in BUILDERS if exchange in NORMALIZERS]


def build_feeds(
    catalogs: Catalogs,
    exchanges: Sequence[str] | None = None,
    urls: Urls | None = None,
) -> list[FeedSpec]:
    """The specs of every connection of ``exchanges`` (default: all :func:`available`).

    Raises ``ValueError`` naming an exchange that has no feed or no normalizer.
    """
    wanted = available() if exchanges is None else list(exchanges)
    specs: list[FeedSpec] = []
    for exchange in wanted:
        if exchange not in BUILDERS:
            raise ValueError(f"no live feed for exchange {exchange!r}; known: {sorted(BUILDERS)}")
        if exchange not in NORMALIZERS:
            raise ValueError(f"exchange {exchange!r} has no normalizer yet")
        specs.extend(BUILDERS[exchange](catalogs, urls or {}))
    return specs
