"""Recorded Binance liquidations: our recorder's CSV and Tardis.dev rows, with the live ids.

Recorder CSV (``binance-csv``): the USD-M ``!forceOrder@arr`` recorder of shared/data/real (no
header; ``symbol, side, order_type, time_in_force, original_quantity, price, average_price,
order_status, last_filled_quantity, filled_accumulated_quantity, trade_time_ms, usd_size
[, tier]``). The recorder removed ``USDT`` from the symbol, so the Binance symbol is rebuilt:
a column that already ends with a USD quote (``ETHUSDC``, ``BTCUSDT``: some recordings kept
full symbols) is kept; ``ETH_250627`` (a dated future) becomes ``ETHUSDT_250627``; anything
else gets ``USDT`` appended (``1000PEPE`` -> ``1000PEPEUSDT``). ``side`` is the *order* side
(SELL closes a long: a long was liquidated); ``size_usd`` is recomputed as
``filled_accumulated_quantity * average_price`` (the ``usd_size`` column uses the order price,
and one recording wrote some in millions). Rows that filled nothing are not liquidation prints
and are ignored, as live.

Tardis rows (``binance-futures``, ``binance-delivery``) carry the liquidation order's limit
price, not its average fill: tardis-node maps ``price`` from ``o.p`` and ``amount`` from ``o.z``
(``src/mappers/binance.ts``), while the live normalizer prices at ``o.ap``. A recorded event's
price and ``size_usd`` can so differ from the live copy's by the order's slack (BTCUSDT
2023-11-01: p 35,100.81 against ap 34,959.70, 0.4 %); the row has no fill price to use
instead (the mapper wrote ``o.ap`` until 2023-01-23, commit 4b7f711: a file made with it has
the fill). Both copies share one id, so the one stored first is kept.

USD-M and COIN-M events get the id the live normalizer gives the same event (``binance_usdm:
{symbol}:{T}:{S}``, see ``normalizer._id_prefix``; ``binance_coinm:{symbol}:{T}:{S}:{z}``), so
a recorded and a live copy of one event dedupe. Tardis's ``amount`` is ``o.z``, but
tardis-node's mapper read ``o.l`` (the order's last fill) from 2023-10-25 to 2025-04-25
(commits 1518819, 89233c0): in a file made with it, a row of an order filled in several parts
is smaller than the live event, and a COIN-M one rebuilds another id (``z`` is in it). Symbol,
``T`` and side alone name a liquidation (one per symbol per second, see
``normalizer._id_prefix``), so the importer finds that live copy by them
(:data:`COINM_LIVE_ID_MATCH`).
Market names, quotes and the COIN-M contract rule (BTC 100 USD, others 10 USD) are the
normalizer's own functions.
"""

from __future__ import annotations

from purpleflea.model import NO_INSTRUMENTS, Side, VenueLiquidation
from purpleflea.venues import symbols
from purpleflea.venues._rows import (
    RowError,
    canonical_quantity,
    integer,
    number,
    positive,
    tardis_liquidation,
)
from purpleflea.venues._rows import timestamp_ms as row_timestamp_ms
from purpleflea.venues._units import from_coins, from_usd, liquidation
from purpleflea.venues.binance.constants import COINM, USD_QUOTES, USDM
from purpleflea.venues.binance.normalizer import (
    _coinm_market,
    _id_prefix,
    _usdm_market,
    coinm_contract_usd,
    coinm_event_id,
)
from purpleflea.venues.venue import (
    History,
    LiveIdMatch,
    PriceFallback,
    RecorderFormat,
    TardisRow,
)

_ORDER_SIDES: dict[str, Side] = {"SELL": "long", "BUY": "short"}


def usdm_event_id(symbol: str, ts: int, order_side: str) -> str:
    """The id :func:`~purpleflea.venues.binance.normalizer.normalize_usdm` gives the event."""
    return f"{_id_prefix(symbol)}{ts}:{order_side}"


def recorder_symbol(column: str) -> str:
    """The Binance USD-M symbol of a recorder ``symbol`` column (``USDT`` removed by it)."""
    pair, underscore, expiry = column.partition("_")
    if any(pair.endswith(quote) and len(pair) > len(quote) for quote in USD_QUOTES):
        return column
    return f"{pair}USDT{underscore}{expiry}"


def usdm_market(symbol: str) -> symbols.Market:
    """Market of a USD-M symbol, as the live normalizer names it; USD quotes only."""
    market, usd_quote = _usdm_market(symbol)
    if not usd_quote:
        raise RowError(f"symbol {symbol!r} has no USD quote (USDT, USDC, ...)")
    return market


def read_recorder_row(row: list[str], price_fallback: PriceFallback) -> VenueLiquidation | None:
    """One recorder CSV row -> its event (``ts`` the trade time), None if it filled nothing."""
    if len(row) not in (12, 13):
        raise RowError(f"expected 12 columns (13 with tier), got {len(row)}")
    column, order_side = row[0].strip(), row[1].strip()
    if not column:
        raise RowError("symbol is empty")
    side = _ORDER_SIDES.get(order_side)
    if side is None:
        raise RowError(f"side (order side) must be BUY or SELL, got {order_side!r}")
    filled_text = row[9].strip()
    filled = number("filled_accumulated_quantity", filled_text)
    if filled < 0:
        raise RowError(f"filled_accumulated_quantity must be >= 0, got {filled_text!r}")
    if filled == 0:
        return None  # an order that filled nothing is not a liquidation print
    if row[6].strip() == "None":
        if price_fallback != "order":
            raise RowError(
                "average_price is 'None' (a recorder bug): the fill price is unknown; "
                "pass --price-fallback order to use the order price instead"
            )
        price = positive("price", row[5])
    else:
        price = positive("average_price", row[6])
    ts = row_timestamp_ms("trade_time_ms", integer("trade_time_ms", row[10].strip()))
    symbol = recorder_symbol(column)
    return liquidation(
        USDM,
        usdm_market(symbol),
        id=usdm_event_id(symbol, ts, order_side),
        symbol=symbol,
        side=side,
        price=price,
        sizes=from_coins(USDM, filled, price),
        ts=ts,
    )


def looks_like_recorder_row(fields: list[str]) -> bool:
    return len(fields) in (12, 13) and fields[1] in _ORDER_SIDES


def read_tardis_usdm(row: TardisRow) -> VenueLiquidation | None:
    """Tardis ``binance-futures``: ``amount`` in coins; the live normalizer's id. None for a
    symbol not quoted in USD (the old ETHBTC perpetual): its dollars are unknown, and the live
    feed drops such an event too (counted as unsized)."""
    market, usd_quote = _usdm_market(row.symbol)
    if not usd_quote:
        return None
    return tardis_liquidation(
        USDM,
        market,
        row,
        from_coins(USDM, row.amount, row.price),
        id=usdm_event_id(row.symbol, row.ts, row.order_side.upper()),
    )


def read_tardis_coinm(row: TardisRow) -> VenueLiquidation:
    """Tardis ``binance-delivery``: ``amount`` in contracts of the COIN-M rule's USD; the live
    normalizer's id (``z`` is a whole number of contracts, which Binance writes ``"3"``)."""
    usd = row.amount * coinm_contract_usd(row.symbol, NO_INSTRUMENTS)
    live_id = coinm_event_id(
        row.symbol, row.ts, row.order_side.upper(), canonical_quantity(row.amount_text)
    )
    return tardis_liquidation(
        COINM, _coinm_market(row.symbol), row, from_usd(COINM, usd, row.price), id=live_id
    )


def coinm_id_prefix(event_id: str) -> str:
    """``binance_coinm:{s}:{T}:{S}:``: the id without its filled contracts."""
    head, colon, _ = event_id.rpartition(":")
    return f"{head}:" if colon and head.count(":") == 3 else event_id


def same_coinm_event(one: str, other: str) -> bool:
    """Two COIN-M ids of one symbol, ``T`` and side name one liquidation, whatever their ``z``."""
    prefix = coinm_id_prefix(one)
    return prefix != one and prefix == coinm_id_prefix(other)


COINM_LIVE_ID_MATCH = LiveIdMatch(COINM, coinm_id_prefix, same_coinm_event)

HISTORY = History(
    tardis={"binance-futures": read_tardis_usdm, "binance-delivery": read_tardis_coinm},
    recorders=(RecorderFormat("binance-csv", read_recorder_row, looks_like_recorder_row),),
    live_id_matches=(COINM_LIVE_ID_MATCH,),
)
