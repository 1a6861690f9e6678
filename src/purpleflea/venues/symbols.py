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

import re
from typing import NamedTuple

_ALIASES = {"XBT": "BTC"}

# Longest first so 1000000MOG is not read as 1000 x "000MOG".
_MULTIPLIER_PREFIX = re.compile(r"^(1000000|100000|10000|1000|1M)(?=[A-Z])")
_PREFIX_VALUE = {"1000000": 1e6, "100000": 1e5, "10000": 1e4, "1000": 1e3, "1M": 1e6}

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
