"""The typed data shared by every part of the tracker.

Three structs carry everything:

- :class:`Instrument` — what a normalizer must know about a contract to turn contracts into
  coins and dollars (linear, inverse or quanto, and the contract size).
- :class:`VenueLiquidation` — one liquidation as a venue reported it, normalized to our
  conventions but not yet sequenced or scored. Normalizers return these.
- :class:`Liquidation` — the published event of the SPEC's schema, what the stream, the store
  and the SDK carry.

JSON goes in and out through the encoder/decoders defined here, so there is one codec.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from typing import Annotated, Any, ClassVar, Literal

import msgspec

Side = Literal["long", "short"]
#: How complete the feed an event came from is (shared/SPEC.md, event schema ``coverage``):
#: ``complete`` the venue sends every liquidation, ``snapshot`` a throttled sample of them
#: (Binance: at most one per symbol per second), ``sampled`` only the accounts we watch.
#: Each venue's class is in its ``venues/<name>/constants.py``.
Coverage = Literal["complete", "snapshot", "sampled"]
ContractKind = Literal["linear", "inverse", "quanto"]

#: A normalized market name, the event schema's ``market`` (venues/symbols.py makes them):
#: ``BASE-PERP`` for perpetuals, ``BASE-YYYYMMDD`` for dated futures. The base is any coin name
#: (Binance lists a ``币安人生USDT`` perpetual) without dashes, slashes, commas (a filter's
#: separator), control characters or what ``str.strip`` removes, spelt out rather than ``\s``
#: because this is also the OpenAPI document's JSON Schema (ECMA-262) pattern, and the two
#: dialects' ``\s`` differ.
MARKET_PATTERN = (
    r"^[^\x00-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000/,-]+"
    r"-([Pp][Ee][Rr][Pp]|[0-9]{8})$"
)
_MARKET = re.compile(MARKET_PATTERN)
#: Where a refused market name's message sends the caller (the MCP tools name their own).
MARKETS_LISTED = "GET /v1/markets lists them"
#: A liquidation order's side (what venues' feeds and Tardis files send), read where the
#: liquidated position's side is asked: a refusal of "buy"/"sell" says what to send instead.
ORDER_SIDES = ("buy", "sell")
ORDER_SIDE_MEANT = (
    "side is the liquidated position, not the liquidation order's side: an order that sells "
    "closes a long (send 'long'), one that buys closes a short ('short')"
)


def order_side_hint(values: Iterable[str]) -> str:
    """``": <ORDER_SIDE_MEANT>"`` to end a refusal of ``values`` when one is an order side
    (any case), else nothing."""
    if any(value.strip().lower() in ORDER_SIDES for value in values):
        return f": {ORDER_SIDE_MEANT}"
    return ""


def market_name(text: str) -> str:
    """``text`` as a market name (upper case, ``btc-perp`` -> ``BTC-PERP``).

    Raises ValueError naming ``text`` when it cannot be one (an exchange symbol such as
    ``BTCUSDT``, a bare coin): a filter on it would match nothing, silently."""
    name = text.upper()
    if _MARKET.match(name) is None:  # as JSON Schema validators read the pattern
        raise ValueError(
            f"market {text!r} is not a market name: markets are BASE-PERP for perpetuals "
            "(BTC-PERP, not BTCUSDT or BTC) and BASE-YYYYMMDD for dated futures "
            f"(BTC-20250926); {MARKETS_LISTED}"
        )
    return name


#: The longest market or symbol an event may carry (the API takes filter values up to 64),
#: and the longest id (a venue's fields joined; the longest real ones are ~120).
NAME_MAX = 64
ID_MAX = 256
#: What starts a formula in a spreadsheet cell (OWASP's CSV injection list; TAB and CR are
#: not printable anyway): ``=HYPERLINK(...)`` in a symbol ran when an export was opened. No
#: venue's name or our ids start so (ids start with their exchange).
FORMULA_STARTS = ("=", "+", "-", "@")


def names_problem(market: str, symbol: str, exchange: str, event_id: str) -> str | None:
    """Why an event's names cannot be stored and served, or None when they can.

    Venues and imported files choose these strings, and every user reads them: the dashboard,
    ``tail``, the MCP tools' answers to a model, CSV exports. A market must be a market name
    (:data:`MARKET_PATTERN`: a filter could not name it otherwise) and printable: no control
    character and no invisible format character (a right-to-left override, a zero-width
    space, the Unicode tag characters that spell text a person does not see and a model
    reads); symbol, exchange and id printable too, each bounded; and none may start like a
    spreadsheet formula (:data:`FORMULA_STARTS`), as ``purpleflea export`` writes them.
    """
    if len(market) > NAME_MAX or _MARKET.match(market) is None or not market.isprintable():
        return f"market {market[:NAME_MAX]!r} is not a printable market name (BASE-PERP)"
    for name, value, longest in (
        ("market", market, NAME_MAX),
        ("symbol", symbol, NAME_MAX),
        ("exchange", exchange, NAME_MAX),
        ("id", event_id, ID_MAX),
    ):
        if not value or len(value) > longest or not value.isprintable():
            return f"{name} {value[:longest]!r} is empty, longer than {longest} or not printable"
        if value.startswith(FORMULA_STARTS):
            return (
                f"{name} {value[:longest]!r} starts with {value[0]!r}: a spreadsheet opening "
                "an export would run it as a formula"
            )
    return None


class Instrument(msgspec.Struct, frozen=True, kw_only=True):
    """The contract facts a normalizer needs for one instrument of one exchange.

    ``contract_size`` means, by ``kind``:

    - ``linear``: base coins per contract (OKX BTC-USDT-SWAP: 0.01 BTC).
    - ``inverse``: USD per contract (Binance COIN-M BTCUSD_PERP: 100 USD).
    - ``quanto``: settlement-currency units per contract per 1.0 of price (BitMEX ETHUSD:
      100 XBt = 1e-6 XBT); ``settle_usd`` must then hold the settlement currency's USD price.

    ``rule`` is None for an instrument the exchange listed; otherwise the instrument was
    missing from the catalog and ``contract_size`` comes from the rule the exchange documents
    for such contracts, which ``rule`` names (never a guess: without a documented rule the
    instrument stays unknown and its liquidations unsized).
    """

    exchange: str
    symbol: str
    kind: ContractKind
    contract_size: float
    settle_usd: float | None = None
    rule: str | None = None


#: Instruments of one exchange, keyed by the exchange's own symbol.
Catalog = Mapping[str, Instrument]

NO_INSTRUMENTS: Catalog = {}


class VenueLiquidation(msgspec.Struct, frozen=True, gc=False):
    """One liquidation as an exchange reported it, in our units and conventions.

    Construct it with keywords; only the Binance hot path passes the nine leading fields
    positionally (measurably cheaper per event), so their order is part of the contract.

    ``side`` is the liquidated position. ``quantity`` is in coins and ``size_usd`` in USD;
    both are ``None`` only when the exchange reports contracts and the instrument's contract
    size is not known (``contracts`` then keeps the raw signed count). ``ts`` is ``None``
    when the exchange sends no time (BitMEX). ``replay`` marks events from a snapshot the
    exchange sends on subscribe, which may repeat events already seen.
    """

    id: str
    exchange: str
    symbol: str
    market: str
    side: Side
    price: float
    quantity: float | None
    size_usd: float | None
    ts: int | None
    replay: bool = False
    contracts: float | None = None
    trade_id: str | None = None
    liquidated_user: str | None = None


class ItemAccess:
    """Fields read as items too (``event["size_usd"]``, the product page's example), with the
    read-only mapping methods dict-style code reaches for: ``in``, ``get``, ``keys``,
    iteration over the field names, ``dict(event)``; ``to_dict()`` for ``json.dumps``.

    Without ``__contains__`` and ``__iter__``, ``"side" in event`` fell back to indexing by
    position and raised ``KeyError: 0``."""

    __slots__ = ()
    __struct_fields__: ClassVar[tuple[str, ...]]

    def __getitem__(self, key: str) -> Any:
        if key not in self.__struct_fields__:
            raise KeyError(key)
        return getattr(self, key)

    def __contains__(self, key: object) -> bool:
        return key in self.__struct_fields__

    def __iter__(self) -> Iterator[str]:
        return iter(self.__struct_fields__)

    def get(self, key: str, default: Any = None) -> Any:
        return getattr(self, key) if key in self.__struct_fields__ else default

    def keys(self) -> tuple[str, ...]:
        return self.__struct_fields__

    def to_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__struct_fields__}


class Liquidation(msgspec.Struct, ItemAccess, frozen=True, kw_only=True, gc=False):
    """A liquidation event as published: the SPEC's event schema.

    Fields read as attributes (``event.size_usd``) or items (``event["size_usd"]``).
    """

    id: str
    seq: int
    exchange: str
    symbol: str
    market: str
    side: Side
    price: float
    quantity: float
    size_usd: float
    ts: int
    received_at: int
    cascade_score: Annotated[int, msgspec.Meta(ge=0, le=10)] = 0
    #: How complete the venue's feed is (:data:`Coverage`): the SPEC's last field.
    coverage: Coverage


class MarketSnapshot(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """Open interest and mark price of one instrument at one time: the heatmap's input.

    ``open_interest`` is one side's open position in coins (every long faces a short of the
    same size); ``open_interest_usd`` is that times the mark price.
    """

    exchange: str
    symbol: str
    market: str
    ts: int
    mark_price: float
    open_interest: float
    open_interest_usd: float


#: The exchange of a stored open interest row replayed as a snapshot: its market's total over
#: every listing, as one instrument (``history:<market>``), in backtests and a restart's warm.
HISTORY_EXCHANGE = "history"


def instrument_of(snapshot: MarketSnapshot) -> str:
    """The snapshot's listing as one key, ``"<exchange>:<symbol>"``: what tells a market's
    listings apart in the cascade engine's open interest and in the stored history of it."""
    return f"{snapshot.exchange}:{snapshot.symbol}"


CascadeStatus = Literal["started", "updated", "exhausted"]


class CascadeAlert(msgspec.Struct, ItemAccess, frozen=True, kw_only=True, gc=False):
    """One step of a liquidation cascade's lifecycle: started -> updated* -> exhausted.

    Every alert of one cascade shares ``id``; ``seq`` is assigned by the server like an
    event's (the stream's ``cascades`` channel and resume use it). Money is USD; times are ms
    since the epoch; ``price_move_pct`` is signed (negative: price fell during the cascade).
    Items read like a :class:`Liquidation`'s (``alert["score"]``).
    """

    id: str
    status: CascadeStatus
    market: str
    side: Side
    score: int
    peak_score: int
    window_usd: float
    window_s: int
    total_usd: float
    events: int
    started_at: int
    updated_at: int
    duration_s: float
    start_price: float
    last_price: float
    price_move_pct: float
    exchanges: tuple[str, ...]
    message: str
    seq: int = 0


class Cluster(msgspec.Struct, frozen=True, kw_only=True):
    """A "landmine": a contiguous price zone dense with liquidation prices of one side.

    ``usd`` is the notional at risk if price crossed the whole zone and nobody acted first
    (an estimate, not expected liquidations: realized ones are a fraction of it; see
    docs/heatmap.md, "Judged by reality");
    ``density`` is USD per 1 % of price inside it; ``strength`` is the zone's mean bucket over
    the side's mean bucket in the view.
    """

    side: Side
    low: float
    high: float
    usd: float
    density: float
    strength: float
    label: str


class PriceBuckets(msgspec.Struct, frozen=True, kw_only=True):
    """Notional (USD) per price bucket for longs and shorts of one market, at ``mark_price``.

    Bucket ``i`` covers ``[prices[i], prices[i] + bucket_size)``. The fields the estimated
    :class:`Heatmap` and the measured :class:`purpleflea.positions.MeasuredMap` share, first on
    the wire in this order; never sent on its own.
    """

    market: str
    ts: int
    mark_price: float
    bucket_size: float
    prices: tuple[float, ...]
    long_usd: tuple[float, ...]
    short_usd: tuple[float, ...]


class Heatmap(PriceBuckets, frozen=True, kw_only=True):
    """Estimated notional at risk (USD) per price bucket for longs and shorts of one market.

    A model fed by open interest and marks, under an assumed leverage mix: the notional whose
    liquidation price would lie in each bucket if nobody acted first, not the liquidations to
    expect there (realized ones were about a sixth of it on Binance BTC). Its validation on real
    data, including where it loses to simple baselines: docs/heatmap.md, "Judged by reality".
    Bucket ``i`` covers ``[prices[i], prices[i] + bucket_size)``. ``clusters`` are sorted by
    ``usd``, largest first.
    """

    clusters: tuple[Cluster, ...]
    #: Always ``"estimated"`` (a measured map, :class:`purpleflea.positions.MeasuredMap`, says
    #: ``"measured"``).
    source: Literal["estimated"] = "estimated"


class UnsizedLiquidation(ValueError):
    """A venue liquidation cannot be published because its size in coins/USD is unknown."""


def to_liquidation(
    venue: VenueLiquidation,
    *,
    seq: int,
    received_at: int,
    coverage: Coverage,
    cascade_score: int = 0,
) -> Liquidation:
    """Turn a venue liquidation into the published event.

    ``coverage`` is the venue's class (``venues.registry.coverage_of(venue.exchange)``).
    Events without an exchange timestamp take the receive time. Raises
    :class:`UnsizedLiquidation` when the contract size was unknown at normalization.
    """
    if venue.quantity is None or venue.size_usd is None:
        raise UnsizedLiquidation(
            f"{venue.exchange} {venue.symbol}: size unknown (contract size missing from the "
            f"instrument catalog; contracts={venue.contracts})"
        )
    return Liquidation(
        id=venue.id,
        seq=seq,
        exchange=venue.exchange,
        symbol=venue.symbol,
        market=venue.market,
        side=venue.side,
        price=venue.price,
        quantity=venue.quantity,
        size_usd=venue.size_usd,
        ts=venue.ts if venue.ts is not None else received_at,
        received_at=received_at,
        coverage=coverage,
        cascade_score=cascade_score,
    )


_encoder = msgspec.json.Encoder()
_liquidation_decoder = msgspec.json.Decoder(Liquidation)
_cascade_decoder = msgspec.json.Decoder(CascadeAlert)


def encode(value: object) -> bytes:
    """Encode any of our structs (or plain data) as JSON bytes."""
    return _encoder.encode(value)


def decode_liquidation(data: bytes | str) -> Liquidation:
    """Decode one published event from JSON; raises ``msgspec.ValidationError`` if invalid."""
    return _liquidation_decoder.decode(data)


def decode_cascade(data: bytes | str) -> CascadeAlert:
    """Decode one cascade alert from JSON; raises ``msgspec.ValidationError`` if invalid."""
    return _cascade_decoder.decode(data)
