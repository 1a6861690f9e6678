"""Hyperliquid: liquidation fills, from a node's ``node_fills`` output or a user's fills.

Hyperliquid has **no public liquidation feed** (shared/EXCHANGES.md trap 13): no websocket
subscription, no flag in public ``trades``. What exists are fills that carry a ``liquidation``
object ``{liquidatedUser?, markPx, method}``, attached to the fills of **both** counterparties:

- a node's fill output, one line per block ``{"block_time":..,"events":[[owner, fill],..]}``
  (``--batch-by-block``) or one ``[owner, fill]`` pair per line (:func:`normalize_node_fills`),
  the only complete source;
- a ``userEvents`` message ``{"channel":"user","data":{"fills":[..]}}`` of a watched address
  (:func:`normalize_user_events`);
- one fill of a watched address, from ``userFills`` (:func:`normalize_fill`), or a whole
  ``{"channel":"userFills","data":{"user":..,"isSnapshot":..,"fills":[..]}}`` message
  (:func:`normalize_user_fills`; the snapshot's fills are replays).

Semantics:

- Side: if the fill's owner is the ``liquidatedUser`` the fill is the liquidation order itself
  (``A`` = sell closes a long); otherwise it is the counterparty's fill, on the other side of
  the liquidation order: a counterparty ``A`` (sell) met a liquidation buy, which closes a
  short. Without ``liquidatedUser`` (backstop fills) the owner's ``dir`` (``Liquidated Cross
  Long``) says it.
- ``px`` is the fill price, ``sz`` base coins, and ``size_usd = sz * px``. That product is in
  the perp dex's collateral token, USDC only on the first dex: a HIP-3 builder dex may take
  "any quote asset" as its collateral (Hyperliquid docs, HIP-3 spec) and names it in its
  ``meta`` as ``collateralToken`` (the info endpoint docs' ``metaAndAssetCtxs`` examples, 0
  for the first dex and for ``xyz``, as copied in code index id 54571890223), a spot token
  index (nautilus_trader's recorded ``allPerpMetas``/``spotMeta`` test data: 0 USDC for the
  first dex, 360 USDH for ``km``, 235 USDE for ``hyna``; a 2026 skill guide lists
  ``flx``/``vntl``/``km`` USDH, ``hyna`` USDE, ``xyz`` USDC). Every collateral seen is a USD
  stablecoin, so the product is counted as USD and the peg gap (normally a small fraction of a
  percent) is not corrected: that would take each token's spot price against USDC. A dex
  collateralized in anything else would be mis-sized here.
- One liquidation spans many fills and each shows up once per counterparty: the id is
  ``(hash, liquidatedUser, coin, tid)``, so both counterparties' copies of a fill share it, and
  a frame yields each id once.
- Markets: ``SOL`` -> SOL-PERP; HIP-3 ``xyz:CRWV`` -> CRWV-PERP; ``kPEPE`` -> PEPE-PERP (1,000
  PEPE per unit). Spot fills (``@107``, ``PURR/USDC``) are not perpetual liquidations and are
  skipped, and so are fills of HIP-4 outcome contracts (prediction markets on mainnet since
  2026-05-02), whose side coins are ``#`` and the outcome id and side index run together
  (``#5160``: outcome 516, side 0; ``#0``): they trade on the same book and in the same
  ``node_fills_by_block`` blocks as perpetuals (QuickNode's Hyperliquid trades dataset page of
  2026-05-15 lists ``"BTC", "ETH", "xyz:HOOD", "@198", "#0"`` as fill coins and ``+N`` as the
  fee token of an outcome fill; docs.outcome.xyz "Coin naming": the ``#`` coin "is what ...
  appears in fill records"), settle to 0 or 1 in USDH and have no perpetual market to name.
  The side token's own name, ``+<encoding>`` (docs.coinversa.ai, HIP-4), is skipped alike.
"""

from __future__ import annotations

from functools import lru_cache

import msgspec

from purpleflea.model import Side, VenueLiquidation
from purpleflea.venues import symbols
from purpleflea.venues._frame import (
    FrameDecoder,
    FrameError,
    all_or_partial,
    non_negative,
    positive,
    rows_events,
    timestamp_ms,
)
from purpleflea.venues._units import from_coins, liquidation
from purpleflea.venues.hyperliquid.constants import EXCHANGE

# The position closed by a liquidation order on each side: A (ask) sells, closing a long.
_ORDER_CLOSES: dict[str, Side] = {"A": "long", "B": "short"}
_OPPOSITE: dict[Side, Side] = {"long": "short", "short": "long"}


class _Liquidation(msgspec.Struct):
    liquidatedUser: str | None = None  # noqa: N815 - Hyperliquid's field name
    markPx: str | float | None = None  # noqa: N815
    method: str = ""


class _Fill(msgspec.Struct):
    coin: str
    px: str | float
    sz: str | float
    side: str
    time: int
    hash: str = ""
    tid: int | str = 0
    dir: str = ""
    liquidation: _Liquidation | None = None


class _NodeFills(msgspec.Struct):
    events: list[tuple[str, _Fill]]


class _UserFillsData(msgspec.Struct):
    user: str
    fills: list[_Fill]
    isSnapshot: bool = False  # noqa: N815


class _UserEventsData(msgspec.Struct):
    fills: list[_Fill] = []


class _UserFills(msgspec.Struct):
    channel: str = ""
    data: msgspec.Raw = msgspec.Raw()  # empty when absent


_decode_fill = FrameDecoder(EXCHANGE, _Fill)
_decode_node_fills = FrameDecoder(EXCHANGE, _NodeFills)
_decode_node_fill_pair = FrameDecoder(EXCHANGE, tuple[str, _Fill])
_decode_user_fills = FrameDecoder(EXCHANGE, _UserFills)
_decode_user_fills_data = FrameDecoder(EXCHANGE, _UserFillsData)
_decode_user_events_data = FrameDecoder(EXCHANGE, _UserEventsData)


#: First characters of coins that are no perpetual: spot pairs (``@107``) and HIP-4 outcome
#: sides (``#5160``, ``+5161``).
_NOT_PERPETUAL = ("@", "#", "+")


@lru_cache(maxsize=4096)
def market(coin: str) -> symbols.Market | None:
    """Market of a perpetual's coin; None for spot (``@107``, ``PURR/USDC``) and HIP-4
    outcome sides (``#5160``)."""
    if coin.startswith(_NOT_PERPETUAL) or "/" in coin:
        return None
    _, _, name = coin.rpartition(":")  # HIP-3 builder dex prefix ``xyz:``
    return symbols.perpetual(name, k_prefix=True) if name else None


def perp_dex(coin: str) -> str:
    """The perp dex a coin trades on: ``""`` for the first (``BTC``), the builder dex's name
    for a HIP-3 coin (``xyz:CRWV`` -> ``xyz``), whose positions and contexts Hyperliquid
    answers only to requests naming that ``dex`` (docs, info endpoint > Perpetuals: "Perp dex
    name. Defaults to the empty string which represents the first perp dex")."""
    dex, _, _ = coin.rpartition(":")
    return dex


def _side(owner: str, fill: _Fill, liquidated_user: str | None, where: str) -> Side:
    order_closes = _ORDER_CLOSES.get(fill.side)
    if order_closes is None:
        raise FrameError(EXCHANGE, f"{where}.side is not A/B: {fill.side!r}")
    if liquidated_user is not None:
        if owner.lower() == liquidated_user.lower():
            return order_closes  # the liquidated user's own fill is the liquidation order
        return _OPPOSITE[order_closes]  # the counterparty traded the other way
    if fill.dir.startswith("Liquidated") and fill.dir.endswith((" Long", " Short")):
        return "long" if fill.dir.endswith(" Long") else "short"
    raise FrameError(EXCHANGE, f"{where}: liquidation without liquidatedUser or a Liquidated dir")


def _event(owner: str, fill: _Fill, where: str, replay: bool = False) -> VenueLiquidation | None:
    if fill.liquidation is None:
        return None  # an ordinary fill
    name = market(fill.coin)
    if name is None:
        return None
    liquidated_user = fill.liquidation.liquidatedUser
    side = _side(owner, fill, liquidated_user, where)
    size = non_negative(EXCHANGE, f"{where}.sz", fill.sz)
    if size == 0:
        return None
    price = positive(EXCHANGE, f"{where}.px", fill.px)
    victim = liquidated_user or owner
    return liquidation(
        EXCHANGE,
        name,
        id=f"{EXCHANGE}:{fill.hash}:{victim.lower()}:{fill.coin}:{fill.tid}",
        symbol=fill.coin,
        side=side,
        price=price,
        sizes=from_coins(EXCHANGE, size, price),
        ts=timestamp_ms(EXCHANGE, f"{where}.time", fill.time),
        replay=replay,
        trade_id=str(fill.tid),
        liquidated_user=victim,
    )


#: One fill to read: its owner, the fill, where it sits in the frame (for errors), replay.
_FillRow = tuple[str, _Fill, str, bool]


def _events(rows: list[_FillRow]) -> list[VenueLiquidation]:
    """The liquidations of ``rows``, each id once (both counterparties' copies of a fill
    share it); a fill that cannot be read is skipped and named (PartialFrame)."""
    events, skipped = rows_events(rows, lambda _, row: _event(*row))
    found: dict[str, VenueLiquidation] = {}
    for event in events:
        found.setdefault(event.id, event)
    return all_or_partial(EXCHANGE, list(found.values()), skipped, len(rows))


def normalize_fill(frame: bytes | str, *, owner: str) -> list[VenueLiquidation]:
    """One ``userFills`` fill of ``owner`` -> its liquidation (none for an ordinary fill)."""
    return _events([(owner, _decode_fill(frame), "fill", False)])


def normalize_node_fills(frame: bytes | str) -> list[VenueLiquidation]:
    """One node output line -> the liquidations of its fills, each once: a block of fills
    ``{"block_time":..,"events":[[owner, fill],..]}`` or a single ``[owner, fill]`` pair."""
    # A node run with --batch-by-block writes one object per block; without it, one bare
    # [owner, fill] pair per line (node_fills/hourly/).
    if frame.lstrip()[:1] in (b"[", "["):
        owner, fill = _decode_node_fill_pair(frame)
        return _events([(owner, fill, "fill", False)])
    decoded = _decode_node_fills(frame)
    return _events(
        [(owner, fill, f"events[{i}]", False) for i, (owner, fill) in enumerate(decoded.events)]
    )


def normalize_user_fills(frame: bytes | str) -> list[VenueLiquidation]:
    """A websocket ``userFills`` message -> its liquidations (replays for the snapshot)."""
    decoded = _decode_user_fills(frame)
    if decoded.channel != "userFills" or len(decoded.data) == 0:
        return []  # subscription responses, pongs, other channels
    data = _decode_user_fills_data(decoded.data)
    return _events(
        [
            (data.user, fill, f"data.fills[{i}]", data.isSnapshot)
            for i, fill in enumerate(data.fills)
        ]
    )


def normalize_user_events(frame: bytes | str, *, owner: str) -> list[VenueLiquidation]:
    """A websocket ``userEvents`` message of ``owner`` (channel ``user``) -> the liquidations
    among its fills. The message names no user (the subscription does), hence ``owner``;
    its ``funding``, ``liquidation`` and ``nonUserCancel`` variants carry no fill to price."""
    decoded = _decode_user_fills(frame)
    if decoded.channel != "user" or len(decoded.data) == 0:
        return []
    data = _decode_user_events_data(decoded.data)
    return _events([(owner, fill, f"data.fills[{i}]", False) for i, fill in enumerate(data.fills)])
