"""Market naming shared by every normalizer."""

from __future__ import annotations

import pytest

from purpleflea.venues import symbols


@pytest.mark.parametrize(
    ("raw", "coin", "multiplier"),
    [
        ("BTC", "BTC", 1.0),
        ("XBT", "BTC", 1.0),
        ("1000PEPE", "PEPE", 1e3),
        ("1000000MOG", "MOG", 1e6),
        ("10000000AIDOGE", "AIDOGE", 1e7),  # Bybit's 10000000AIDOGEUSDT
        ("10000LADYS", "LADYS", 1e4),
        ("1MBABYDOGE", "BABYDOGE", 1e6),
        ("1INCH", "1INCH", 1.0),  # a coin whose name starts with a digit, not a multiplier
        ("1000", "1000", 1.0),  # nothing after the digits: not a multiplier
    ],
)
def test_base_coin(raw: str, coin: str, multiplier: float) -> None:
    assert symbols.base_coin(raw) == (coin, multiplier)


def test_hyperliquid_k_prefix_only_when_asked() -> None:
    assert symbols.base_coin("kPEPE", k_prefix=True) == ("PEPE", 1e3)
    assert symbols.base_coin("kPEPE") == ("KPEPE", 1.0)
    assert symbols.base_coin("KAS", k_prefix=True) == ("KAS", 1.0)


def test_market_names() -> None:
    assert symbols.perpetual("XBT") == symbols.Market("BTC-PERP", 1.0)
    assert symbols.dated("ETH", "20241227") == symbols.Market("ETH-20241227", 1.0)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("200925", "20200925"), ("251301", None), ("PERP", None), ("2509", None)],
)
def test_from_yymmdd(text: str, expected: str | None) -> None:
    assert symbols.from_yymmdd(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [("27DEC24", "20241227"), ("7MAR25", "20250307"), ("27XYZ24", None), ("40DEC24", None)],
)
def test_from_ddmonyy(text: str, expected: str | None) -> None:
    assert symbols.from_ddmonyy(text) == expected


@pytest.mark.parametrize(
    ("code", "yy", "expected"),
    [("Z", "24", "20241227"), ("H", "25", "20250328"), ("A", "25", None), ("Z", "2x", None)],
)
def test_from_month_code_is_the_last_friday(code: str, yy: str, expected: str | None) -> None:
    assert symbols.from_month_code(code, yy) == expected


@pytest.mark.parametrize(
    ("symbol", "market", "quote"),
    [
        ("BTCUSDT", "BTC-PERP", "USDT"),
        ("XBTUSD", "BTC-PERP", "USD"),
        ("BTCPERP", "BTC-PERP", "PERP"),
        ("BTCUSDZ24", "BTC-20241227", "USD"),
        ("XBTZ24", "BTC-20241227", ""),
        ("1000PEPEUSDT", "PEPE-PERP", "USDT"),
    ],
)
def test_concatenated_symbols(symbol: str, market: str, quote: str) -> None:
    name, found = symbols.concatenated(symbol)
    assert (name.name, found) == (market, quote)


def test_strip_quote_needs_a_base() -> None:
    assert symbols.strip_quote("USDT", ("USDT",)) is None
    assert symbols.strip_quote("ETHUSDT", ("USDT", "USD")) == ("ETH", "USDT")
