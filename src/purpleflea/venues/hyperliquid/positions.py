"""Hyperliquid's public account data: who trades, what they hold, where it liquidates.

Hyperliquid publishes no liquidation feed (shared/EXCHANGES.md trap 13) but its public API
publishes what a sampler needs (info endpoint and websocket, docs "For developers > API"):

- ``trades`` websocket messages ``{"channel":"trades","data":[{coin, side, px, sz, time,
  hash, tid, users: [buyer, seller]}]}``: both addresses of every trade
  (:func:`trade_addresses`), how accounts are discovered;
- ``POST /info {"type":"clearinghouseState","user":..}``: an account's perpetual positions,
  ``assetPositions[].position = {coin, szi, entryPx, positionValue, liquidationPx,
  leverage: {type: cross|isolated, value}, ..}`` (:func:`parse_clearinghouse`); ``szi`` is
  signed (negative: short) and ``liquidationPx`` is null when the account cannot be
  liquidated;
- ``POST /info {"type":"metaAndAssetCtxs"}``: ``[meta, assetCtxs]``, mark and open interest
  per coin (:func:`parse_contexts`).

Both requests answer for one perp dex: the first without ``dex``, a HIP-3 builder dex's
(``xyz:CRWV``) only with ``"dex":"xyz"`` (docs, info endpoint > Perpetuals; the python SDK's
``user_state(address, dex)``), so the sampler asks each dex of its coins (``scope``).

Units: ``kPEPE`` sizes count 1,000 PEPE, so sizes are multiplied and prices divided by the
market's multiplier; ``positionValue`` is already in the dex's collateral token, a USD
stablecoin counted as USD (the normalizer's docstring).
"""

from __future__ import annotations

import json

import msgspec

from purpleflea.model import VenueLiquidation
from purpleflea.positions import MarginMode, MarketContext, Position, SeenTrade
from purpleflea.venues._connection import as_text, json_object, mentions
from purpleflea.venues._frame import FrameDecoder, FrameError, number, positive, timestamp_ms
from purpleflea.venues.hyperliquid import open_interest
from purpleflea.venues.hyperliquid.constants import EXCHANGE
from purpleflea.venues.hyperliquid.normalizer import (
    market,
    normalize_node_fills,
    normalize_user_events,
    perp_dex,
)
from purpleflea.venues.venue import PositionSampling, SimulatedVenue

_MARGIN_MODES: tuple[MarginMode, ...] = ("cross", "isolated")


class _Trade(msgspec.Struct):
    coin: str
    px: str | float
    time: int
    users: list[str] = []


class _Message(msgspec.Struct):
    channel: str = ""
    data: msgspec.Raw = msgspec.Raw()  # empty when absent


class _Leverage(msgspec.Struct):
    type: str
    value: float = 0.0


class _Position(msgspec.Struct):
    coin: str
    szi: str | float
    entryPx: str | float | None = None  # noqa: N815 - Hyperliquid's field names
    positionValue: str | float = 0.0  # noqa: N815
    liquidationPx: str | float | None = None  # noqa: N815
    leverage: _Leverage | None = None


class _AssetPosition(msgspec.Struct):
    position: _Position


class _State(msgspec.Struct):
    assetPositions: list[_AssetPosition]  # noqa: N815


_decode_message = FrameDecoder(EXCHANGE, _Message)
_decode_trades = FrameDecoder(EXCHANGE, list[_Trade])
_decode_state = FrameDecoder(EXCHANGE, _State)


def is_address(text: str) -> bool:
    """A 42-character ``0x`` hex address (what ``trades`` ``users`` and requests carry)."""
    if len(text) != 42 or not text.startswith("0x"):
        return False
    try:
        int(text[2:], 16)
    except ValueError:
        return False
    return True


def parse_trades(frame: bytes | str) -> list[SeenTrade]:
    """A ``trades`` message -> its perpetual trades: market, price per coin, time, both
    addresses (lowercase). Other channels (``subscriptionResponse``, ``pong``) give none; a
    trade whose ``users`` are not addresses raises :class:`FrameError` naming it."""
    decoded = _decode_message(frame)
    if decoded.channel != "trades" or len(decoded.data) == 0:
        return []
    found = []
    for i, trade in enumerate(_decode_trades(decoded.data)):
        for user in trade.users:
            if not is_address(user):
                raise FrameError(EXCHANGE, f"data[{i}].users: not an address: {user!r}")
        name = market(trade.coin)
        if name is None:
            continue  # spot
        found.append(
            SeenTrade(
                market=name.name,
                price=positive(EXCHANGE, f"data[{i}].px", trade.px) / name.multiplier,
                ts=timestamp_ms(EXCHANGE, f"data[{i}].time", trade.time),
                users=tuple(user.lower() for user in trade.users),
                symbol=trade.coin,
            )
        )
    return found


def trade_addresses(frame: bytes | str) -> list[str]:
    """A ``trades`` message -> the addresses of its trades (each once, in order)."""
    return list(dict.fromkeys(user for trade in parse_trades(frame) for user in trade.users))


def _position(account: str, raw: _Position, where: str) -> Position | None:
    name = market(raw.coin)
    if name is None:
        return None
    signed = number(EXCHANGE, f"{where}.szi", raw.szi) * name.multiplier
    if signed == 0:
        return None
    if raw.leverage is None or raw.leverage.type not in _MARGIN_MODES:
        kind = raw.leverage.type if raw.leverage else None
        raise FrameError(EXCHANGE, f"{where}.leverage.type is not cross/isolated: {kind!r}")
    if raw.entryPx is None:
        raise FrameError(EXCHANGE, f"{where}.entryPx is missing for an open position")
    liquidation = raw.liquidationPx
    return Position(
        account=account.lower(),
        exchange=EXCHANGE,
        symbol=raw.coin,
        market=name.name,
        side="long" if signed > 0 else "short",
        size=abs(signed),
        entry_price=positive(EXCHANGE, f"{where}.entryPx", raw.entryPx) / name.multiplier,
        margin="cross" if raw.leverage.type == "cross" else "isolated",
        leverage=raw.leverage.value,
        liquidation_price=(
            None
            if liquidation is None
            else positive(EXCHANGE, f"{where}.liquidationPx", liquidation) / name.multiplier
        ),
        notional_usd=abs(number(EXCHANGE, f"{where}.positionValue", raw.positionValue)),
    )


def parse_clearinghouse(body: bytes | str, account: str) -> list[Position]:
    """A ``clearinghouseState`` response of ``account`` -> its open perpetual positions."""
    state = _decode_state(body)
    found = [
        _position(account, entry.position, f"assetPositions[{i}].position")
        for i, entry in enumerate(state.assetPositions)
    ]
    return [position for position in found if position is not None]


def parse_contexts(body: bytes) -> dict[str, MarketContext]:
    """A ``metaAndAssetCtxs`` response -> mark and open interest per market (coins, USD)."""
    contexts: dict[str, MarketContext] = {}
    for reading in open_interest.parse(body, {}):
        name = market(reading.symbol)
        if name is None:
            continue
        contexts[name.name] = MarketContext(  # the reading is in real coins already
            market=name.name,
            mark_price=reading.mark_price,
            open_interest=reading.open_interest,
            open_interest_usd=reading.open_interest * reading.mark_price,
        )
    return contexts


def _user_request(account: str, dex: str) -> dict[str, str]:
    # Without "dex" Hyperliquid answers for the first perp dex only: a HIP-3 dex's positions
    # must be asked for by name (docs, info endpoint > Perpetuals), as its contexts are.
    request = {"type": "clearinghouseState", "user": account}
    return {**request, "dex": dex} if dex else request


def _trades_subscription(coin: str) -> str:
    return json.dumps({"method": "subscribe", "subscription": {"type": "trades", "coin": coin}})


def _user_subscription(account: str) -> str:
    return json.dumps(
        {"method": "subscribe", "subscription": {"type": "userEvents", "user": account}}
    )


def _simulated(coins: tuple[str, ...]) -> SimulatedVenue:
    # Imported when asked: it reads the simulator, which imports the venue registry.
    from purpleflea.venues.hyperliquid.simulated import SimulatedHyperliquid  # noqa: PLC0415

    return SimulatedHyperliquid(coins)


def _user_liquidations(frame: bytes | str, account: str) -> list[VenueLiquidation]:
    return normalize_user_events(frame, owner=account)


def _refusal(frame: bytes | str) -> str | None:
    """Hyperliquid's ``{"channel":"error","data":"Invalid subscription .."}`` (acks are
    ``subscriptionResponse``, pongs ``{"channel":"pong"}``)."""
    if not mentions(frame, "error"):
        return None  # trades frames are large and many: skip the parse
    message = json_object(frame)
    if message is None or message.get("channel") != "error":
        return None
    return as_text(message.get("data"))


def _subscribed(frame: bytes | str) -> bool:
    """Hyperliquid's answer to a subscribe: ``{"channel":"subscriptionResponse",..}`` or
    ``{"channel":"error",..}``."""
    if not (mentions(frame, "subscriptionResponse") or mentions(frame, "error")):
        return False  # trades frames are large and many: skip the parse
    message = json_object(frame)
    return message is not None and message.get("channel") in ("subscriptionResponse", "error")


# Hyperliquid docs, "For developers > API > Rate limits and user limits" (per IP address):
# "REST requests share an aggregated weight limit of 1200 per minute"; info requests
# "clearinghouseState" weigh 2 and "all other documented info requests have weight 20"
# (metaAndAssetCtxs); websocket: "Maximum of 1000 websocket subscriptions", "Maximum of 10
# unique users across user-specific websocket subscriptions", "Maximum of 10 websocket
# connections", "Maximum of 30 new websocket connections per minute". (Copies of the page
# from before late 2025 read "Maximum of 100 websocket connections" and have no per-minute
# cap; the copies listing HIP-3 dexes, growthMode 2025-11-23, and the SDKs written against
# them, e.g. df-hyperliquid-core's MAX_CONNECTIONS = 10 / MAX_NEW_CONNECTIONS_PER_MINUTE = 30,
# have the lower ones; one client notes live refusals "Cannot open more than 15
# connections".)
SAMPLING = PositionSampling(
    exchange=EXCHANGE,
    info_url="https://api.hyperliquid.xyz/info",
    ws_url="wss://api.hyperliquid.xyz/ws",
    account_request=_user_request,
    parse_account=parse_clearinghouse,
    contexts_request=open_interest.contexts_request,
    parse_contexts=parse_contexts,
    trades_subscription=_trades_subscription,
    parse_trades=parse_trades,
    user_subscription=_user_subscription,
    parse_user_liquidations=_user_liquidations,
    weight_per_minute=1200,
    account_weight=2,
    contexts_weight=20,
    max_user_subscriptions=10,
    max_connections=10,
    max_new_connections_per_minute=30,
    simulated=_simulated,
    parse_node_line=normalize_node_fills,
    refusal=_refusal,
    subscribed=_subscribed,
    scope=perp_dex,
    # The open-interest poller asks perpDexs and each dex's metaAndAssetCtxs (weight 20 each)
    # from the same IP, one request every 10 s at most: 120 a minute.
    reserved_weight_per_minute=sum(
        open_interest.most_weight_per_minute(source) for source in open_interest.SOURCES
    ),
)
