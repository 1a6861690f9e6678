"""Market naming: every exchange's BTC perpetual is ``BTC-PERP``.

Conventions (shared/SPEC.md):

- perpetuals are ``BASE-PERP``; dated futures ``BASE-YYYYMMDD``;
- ``XBT`` is ``BTC``;
- a unit multiplier in the symbol (``1000PEPEUSDT``, ``1MBABYDOGEUSDT``, Hyperliquid's
  ``kPEPE``) is taken out of the market name, and normalizers scale price and quantity so both
  stay in real coin units: ``1000PEPEUSDT`` at 0.0123 is ``PEPE-PERP`` at 0.0000123 per PEPE.
  ``symbol`` keeps the exchange's own id, so nothing is lost.
"""

from __future__ import annotations

import calendar
import re
from typing import NamedTuple

_ALIASES = {"XBT": "BTC"}

# Longest first so 1000000MOG is not read as 1000 x "000MOG"; Bybit goes up to ten million
# (10000000AIDOGEUSDT).
_MULTIPLIER_PREFIX = re.compile(r"^(10000000|1000000|100000|10000|1000|1M)(?=[A-Z])")
_PREFIX_VALUE = {
    "10000000": 1e7,
    "1000000": 1e6,
    "100000": 1e5,
    "10000": 1e4,
    "1000": 1e3,
    "1M": 1e6,
}

#: Futures month codes, January .. December (BitMEX ``XBTZ24``, Bybit ``BTCUSDZ24``).
MONTH_CODES = "FGHJKMNQUVXZ"

_MONTHS = {
    m: i + 1
    for i, m in enumerate(
        ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"]
    )
}


class Market(NamedTuple):
    """A normalized market name and how many real coins one symbol unit stands for."""

    name: str
    multiplier: float = 1.0


def base_coin(raw: str, *, k_prefix: bool = False) -> tuple[str, float]:
    """The canonical coin and unit multiplier of an exchange's base asset name.

    ``k_prefix`` reads Hyperliquid's ``kPEPE`` (1,000 PEPE) convention; elsewhere a leading
    ``k`` is part of the name.
    """
    if k_prefix and len(raw) > 1 and raw[0] == "k" and raw[1:].isupper():
        return _ALIASES.get(raw[1:], raw[1:]), 1e3
    upper = raw.upper()
    match = _MULTIPLIER_PREFIX.match(upper)
    if match and len(upper) > match.end():
        prefix = match.group(1)
        coin = upper[match.end() :]
        return _ALIASES.get(coin, coin), _PREFIX_VALUE[prefix]
    return _ALIASES.get(upper, upper), 1.0


def perpetual(raw_base: str, *, k_prefix: bool = False) -> Market:
    """``BASE-PERP`` for an exchange's base asset name."""
    coin, multiplier = base_coin(raw_base, k_prefix=k_prefix)
    return Market(f"{coin}-PERP", multiplier)


def dated(raw_base: str, yyyymmdd: str) -> Market:
    """``BASE-YYYYMMDD`` for a dated future."""
    coin, multiplier = base_coin(raw_base)
    return Market(f"{coin}-{yyyymmdd}", multiplier)


def from_yymmdd(text: str) -> str | None:
    """``200925`` -> ``20200925``; None if it is not a date."""
    if len(text) != 6 or not text.isdigit():
        return None
    month, day = int(text[2:4]), int(text[4:6])
    if not (1 <= month <= 12 and 1 <= day <= 31):
        return None
    return f"20{text}"


def from_ddmonyy(text: str) -> str | None:
    """``27DEC24`` or ``7MAR25`` -> ``20241227`` / ``20250307``; None if it is not a date."""
    match = re.fullmatch(r"(\d{1,2})([A-Z]{3})(\d{2})", text)
    if match is None or match.group(2) not in _MONTHS:
        return None
    day = int(match.group(1))
    if not 1 <= day <= 31:
        return None
    return f"20{match.group(3)}{_MONTHS[match.group(2)]:02d}{day:02d}"


def from_month_code(code: str, yy: str) -> str | None:
    """``Z``, ``24`` -> ``20241227``: the last Friday of the coded month; None if not a code.

    BitMEX and Bybit quarterly futures (``XBTZ24``, ``BTCUSDZ24``) expire on the last Friday
    of their month, and their symbols carry only the month code and the year.
    """
    if len(code) != 1 or code not in MONTH_CODES or len(yy) != 2 or not yy.isdigit():
        return None
    year, month = 2000 + int(yy), MONTH_CODES.index(code) + 1
    last_day = calendar.monthrange(year, month)[1]
    weekday = calendar.weekday(year, month, last_day)  # Monday 0 .. Friday 4
    return f"{year}{month:02d}{last_day - (weekday - 4) % 7:02d}"


def strip_quote(pair: str, quotes: tuple[str, ...]) -> tuple[str, str] | None:
    """``BTCUSDT`` -> (``BTC``, ``USDT``) for the first quote in ``quotes`` that ends ``pair``.

    List longer quotes first (``USDT`` before ``USD``); None when none matches or nothing
    would be left of the base.
    """
    for quote in quotes:
        if pair.endswith(quote) and len(pair) > len(quote):
            return pair[: -len(quote)], quote
    return None


_MONTH_CODED = re.compile(r"^([A-Z0-9]+?)([FGHJKMNQUVXZ])(\d{2})$")

#: Quote suffixes of concatenated symbols, longest first.
QUOTES = ("USDT", "USDC", "PERP", "USD")


def concatenated(symbol: str, quotes: tuple[str, ...] = QUOTES) -> tuple[Market, str]:
    """Market and quote of a concatenated symbol; the quote is ``""`` when none is found.

    ``BTCUSDT`` -> (``BTC-PERP``, ``USDT``); ``XBTUSD`` -> (``BTC-PERP``, ``USD``); month-coded
    futures ``BTCUSDZ24`` -> (``BTC-20241227``, ``USD``) and ``XBTZ24`` -> (``BTC-20241227``,
    ``""``) (Bybit, BitMEX, Bitget).
    """
    pair, date = symbol, None
    coded = _MONTH_CODED.match(symbol)
    if coded:
        date = from_month_code(coded.group(2), coded.group(3))
        if date:
            pair = coded.group(1)
    split = strip_quote(pair, quotes)
    base, quote = split if split else (pair, "")
    return (dated(base, date) if date else perpetual(base)), quote
