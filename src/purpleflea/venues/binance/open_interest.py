"""Binance USD-M's marks (one bulk call) and open interest (one call per symbol).

``openInterest`` is in the base coin and counts each matched long and short once (Binance
Futures' public reply of July 2025 when Hyperliquid's figure was compared with it). COIN-M's
``dapi`` open interest, in contracts, is not polled.
"""

from __future__ import annotations

from purpleflea.model import Catalog
from purpleflea.venues import symbols
from purpleflea.venues._open_interest import PollError, as_list, json_body, keep, num, reading
from purpleflea.venues.binance.constants import USDM
from purpleflea.venues.venue import PerSymbol, PollSource, Reading

BASE_URL = "https://fapi.binance.com"
#: Open interest is read one symbol per request: the majors only.
SYMBOLS = ("BTCUSDT", "ETHUSDT", "SOLUSDT", "XRPUSDT", "DOGEUSDT", "BNBUSDT")


def market_name(symbol: str) -> str | None:
    """Perpetuals only: the dated futures (``BTCUSDT_250627``) are not polled."""
    return None if "_" in symbol else symbols.concatenated(symbol, ("USDT", "USDC"))[0].name


def parse_premium_index(body: bytes, instruments: Catalog) -> list[Reading]:
    """``GET fapi/v1/premiumIndex``: marks only (open interest comes per symbol).

    Returned with ``open_interest`` 0; :func:`parse_open_interest` fills it in.
    """
    del instruments
    return keep(
        [
            reading(row.get("symbol"), row.get("markPrice"), 0)
            for row in as_list(USDM, json_body(USDM, body))
        ]
    )


def parse_open_interest(body: bytes) -> tuple[str, float]:
    """``GET fapi/v1/openInterest?symbol=``: ``{"openInterest": coins, "symbol": ..}``."""
    row = json_body(USDM, body)
    oi = num(row.get("openInterest")) if isinstance(row, dict) else None
    if oi is None or not isinstance(row.get("symbol"), str):
        raise PollError(f"{USDM} open interest: unreadable row {row!r:.80}")
    return row["symbol"], oi


def source(
    base_url: str = BASE_URL, symbols: tuple[str, ...] = SYMBOLS, pause: float = 0.05
) -> PollSource:
    """USD-M has no bulk open-interest endpoint: marks come in one call (``premiumIndex``),
    open interest one symbol at a time, paced well inside the 2,400 request-weight per minute
    limit (each call weighs 1)."""
    return PollSource(
        USDM,
        (f"{base_url}/fapi/v1/premiumIndex",),
        parse_premium_index,
        per_symbol=PerSymbol(
            f"{base_url}/fapi/v1/openInterest", parse_open_interest, symbols, pause
        ),
    )


SOURCES = (source(),)
