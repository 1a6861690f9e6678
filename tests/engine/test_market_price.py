"""The one rule for which liquidation prices are the market's (live server and backtests)."""

from purpleflea.engine.market_price import MarketPrice


def test_other_kinds_count_only_until_the_markets_first_fill() -> None:
    prices = MarketPrice({"binance_usdm"})
    assert prices.counts("BTC-PERP", "okx")  # no fill yet: the bankruptcy price is all there is
    assert not prices.has_fill("BTC-PERP")
    assert prices.counts("BTC-PERP", "binance_usdm")
    assert prices.has_fill("BTC-PERP")
    assert not prices.counts("BTC-PERP", "okx")
    assert prices.counts("ETH-PERP", "okx")  # per market


def test_without_a_list_every_price_is_a_fill() -> None:
    prices = MarketPrice()
    assert prices.is_fill("okx")
    assert prices.counts("BTC-PERP", "okx")
    assert prices.counts("BTC-PERP", "bybit")
