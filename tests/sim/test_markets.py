"""The simulated universe: real tickers, native symbols, realistic scales."""

from __future__ import annotations

import pytest

from purpleflea.sim import EXCHANGE_SHARES, universe
from purpleflea.sim.markets import native_symbol
from purpleflea.venues.symbols import perpetual, strip_quote


def test_default_universe_has_275_distinct_real_markets() -> None:
    markets = universe()
    assert len(markets) == 275
    assert len({m.name for m in markets}) == 275
    assert [m.name for m in markets[:5]] == [
        "BTC-PERP",
        "ETH-PERP",
        "SOL-PERP",
        "XRP-PERP",
        "DOGE-PERP",
    ]
    by_name = {m.name: m for m in markets}
    assert 1e-6 < by_name["PEPE-PERP"].price < 1e-4  # real coin units, not 1000PEPE
    assert by_name["BTC-PERP"].oi_usd > 100 * markets[-1].oi_usd
    assert by_name["BTC-PERP"].daily_vol < by_name["WIF-PERP"].daily_vol
    for market in markets:
        assert sum(lst.share for lst in market.listings) == pytest.approx(1.0)
        assert {lst.exchange for lst in market.listings} <= set(EXCHANGE_SHARES)
    with pytest.raises(ValueError, match="n_markets"):
        universe(0)


def test_native_symbols_look_like_the_exchanges_own() -> None:
    assert native_symbol("binance_usdm", "BTC") == "BTCUSDT"
    assert native_symbol("binance_usdm", "PEPE") == "1000PEPEUSDT"
    assert native_symbol("okx", "BTC") == "BTC-USDT-SWAP"
    assert native_symbol("gate", "BTC") == "BTC_USDT"
    assert native_symbol("bitmex", "BTC") == "XBTUSD"
    assert native_symbol("deribit", "BTC") == "BTC-PERPETUAL"
    assert native_symbol("dydx_v4", "ETH") == "ETH-USD"
    assert native_symbol("kraken_futures", "BTC") == "PF_XBTUSD"
    assert native_symbol("binance_coinm", "BTC") == "BTCUSD_PERP"
    with pytest.raises(ValueError, match="nasdaq"):
        native_symbol("nasdaq", "BTC")


def test_binance_symbols_normalize_back_to_the_market() -> None:
    for market in universe():
        for listing in market.listings:
            if listing.exchange == "binance_usdm":
                split = strip_quote(listing.symbol, ("USDT",))
                assert split is not None
                assert perpetual(split[0]).name == market.name


def test_tail_markets_are_not_on_every_exchange() -> None:
    markets = universe()
    assert {lst.exchange for lst in markets[0].listings} == set(EXCHANGE_SHARES)
    tail = {lst.exchange for lst in markets[-1].listings}
    assert "deribit" not in tail
    assert "bitmex" not in tail
    share = {lst.exchange: lst.share for lst in markets[0].listings}
    assert share["binance_usdm"] == pytest.approx(0.40)
