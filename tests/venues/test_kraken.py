"""Kraken Futures trade feed: liquidation trades, inverse vs multi-collateral units, snapshots."""

from __future__ import annotations

import json

import pytest

from purpleflea.model import Instrument
from purpleflea.venues import FrameError, kraken

PI_XBTUSD = Instrument(
    exchange="kraken_futures", symbol="PI_XBTUSD", kind="inverse", contract_size=1.0
)


def _trade(**overrides: object) -> dict[str, object]:
    trade: dict[str, object] = {
        "feed": "trade",
        "product_id": "PI_XBTUSD",
        "uid": "u-1",
        "side": "sell",
        "type": "liquidation",
        "seq": 1,
        "time": 1_718_000_000_000,
        "qty": 5000,
        "price": 50000.0,
    }
    trade.update(overrides)
    return trade


def _raw(**overrides: object) -> bytes:
    return json.dumps(_trade(**overrides)).encode()


def test_taker_sell_liquidation_is_a_long_in_usd_contracts() -> None:
    [event] = kraken.normalize(_raw(), {"PI_XBTUSD": PI_XBTUSD})
    assert event.side == "long"
    assert event.market == "BTC-PERP"
    assert event.size_usd == 5000.0
    assert event.quantity == pytest.approx(0.1)
    assert event.contracts == 5000
    assert event.id == "kraken_futures:u-1"


def test_inverse_missing_from_the_catalog_is_sized_by_the_documented_one_usd_contract() -> None:
    # Kraken's contract pages give every inverse contract one face value: "Contract Size &
    # Minimum Order: 1 USD" for each FI_ (support.kraken.com 360022632172, Inverse
    # Crypto-Collateral Fixed Maturity Contract Specifications), "Min Lot: 1 USD" for each PI_
    # (support.cryptofacilities.com 360008643453). A contract listed after the last catalog
    # fetch (or any, while the fetch fails) was left unsized and never published.
    [event] = kraken.normalize(_raw(product_id="FI_XBTUSD_261225", qty=5000))
    assert (event.size_usd, event.contracts, event.market) == (5000.0, 5000, "BTC-20261225")
    assert event.quantity == pytest.approx(0.1)
    [event] = kraken.normalize(_raw(product_id="PI_LTCUSD", qty=300, price=75.0))
    assert (event.size_usd, event.quantity) == (300.0, 4.0)
    rule = kraken.catalog.by_documented_rule("PI_LTCUSD")
    assert rule is not None
    assert (rule.kind, rule.contract_size, rule.rule) == (
        "inverse",
        1.0,
        kraken.catalog.INVERSE_RULE,
    )
    # Only inverse products have the rule; the catalog's own entry wins where there is one.
    assert kraken.catalog.by_documented_rule("PF_LTCUSD") is None
    half = Instrument(
        exchange="kraken_futures", symbol="PI_LTCUSD", kind="inverse", contract_size=0.5
    )
    [event] = kraken.normalize(
        _raw(product_id="PI_LTCUSD", qty=300, price=75.0), {"PI_LTCUSD": half}
    )
    assert event.size_usd == 150.0


def test_multi_collateral_quantity_is_coins() -> None:
    [event] = kraken.normalize(_raw(product_id="PF_ETHUSD", side="buy", qty=2.5, price=3000))
    assert (event.side, event.quantity, event.size_usd) == ("short", 2.5, 7500.0)


def test_snapshot_trades_are_replays_and_fills_are_not_liquidations() -> None:
    snapshot = {
        "feed": "trade_snapshot",
        "product_id": "PI_XBTUSD",
        "trades": [_trade(type="fill", uid="f"), _trade(uid="l")],
    }
    [event] = kraken.normalize(json.dumps(snapshot).encode(), {"PI_XBTUSD": PI_XBTUSD})
    assert (event.trade_id, event.replay) == ("l", True)


def test_dated_futures_market() -> None:
    [event] = kraken.normalize(_raw(product_id="FF_XBTUSD_241227", qty=1))
    assert event.market == "BTC-20241227"


def test_control_frames_yield_nothing() -> None:
    assert kraken.normalize(b'{"event":"info","version":1}') == []
    assert (
        kraken.normalize(b'{"event":"subscribed","feed":"trade","product_ids":["PI_XBTUSD"]}') == []
    )
    assert kraken.normalize(b'{"feed":"heartbeat","time":1718000000000}') == []
    assert kraken.normalize(_raw(type="termination")) == []


def test_malformed_trades_raise_frame_error() -> None:
    with pytest.raises(FrameError, match=r"^kraken_futures frame: side is not buy/sell"):
        kraken.normalize(_raw(side="?"))
    with pytest.raises(FrameError, match="product_id is not a futures product: 'XBTUSD'"):
        kraken.normalize(_raw(product_id="XBTUSD"))


def test_catalog_of_a_lower_case_instrument_list_sizes_the_upper_case_feed() -> None:
    # The instrument list as recorded 2021-07-22 (bmoscon/cryptofeed sample_data/KRAKEN_FUTURES.0,
    # one row trimmed to the fields read): symbols in lower case. The trade feed names the same
    # products in upper case even when subscribed in lower case (same recording, .ws.1.0).
    body = (
        b'{"result":"success","instruments":[{"symbol":"pi_ethusd","type":"futures_inverse",'
        b'"underlying":"rr_ethusd","tickSize":0.05,"contractSize":1,"tradeable":true}]}'
    )
    # A real liquidation, 2020-07-01 (tardis-dev/tardis-node test/mappers.test.ts).
    frame = (
        b'{"feed":"trade","product_id":"PI_ETHUSD","uid":"e7f3a144-5c04-4ed6-999e-5922cd0b6160",'
        b'"side":"buy","type":"liquidation","seq":253796,"time":1593620853613,"qty":250,'
        b'"price":231.6}'
    )
    instruments = {i.symbol: i for i in kraken.catalog.parse(body)}
    [event] = kraken.normalize(frame, instruments)
    assert (event.side, event.size_usd, event.contracts) == ("short", 250.0, 250)
    assert event.quantity == pytest.approx(250 / 231.6)


def test_a_tokenized_stock_keeps_its_lower_case_x_from_list_to_subscribe_to_event() -> None:
    # Kraken's instrument list spells its tokenized-stock perpetuals with a lower-case x
    # (``PF_AAPLxUSD``, base ``AAPLx``: a list recorded 2025, nautechsystems/nautilus_trader
    # crates/adapters/kraken/test_data/http_futures_instruments.json, rows trimmed to the fields
    # read). Upper-casing it, meant for the all-lower-case lists of 2021, subscribed
    # ``PF_AAPLXUSD``, a product Kraken does not list, and keyed the catalog apart from the
    # feed's ``product_id``.
    body = (
        b'{"result":"success","instruments":['
        b'{"symbol":"PF_ETHUSD","type":"flexible_futures","contractSize":1,"tradeable":true},'
        b'{"symbol":"PF_AAPLxUSD","type":"flexible_futures","contractSize":1,"tradeable":true,'
        b'"base":"AAPLx","quote":"USD","pair":"AAPLx:USD"}]}'
    )
    instruments = {i.symbol: i for i in kraken.catalog.parse(body)}
    assert set(instruments) == {"PF_ETHUSD", "PF_AAPLxUSD"}
    [connection] = kraken.connection.connections(instruments)
    subscribe = json.loads(connection.subscribe()[0])
    assert subscribe["product_ids"] == ["PF_AAPLxUSD", "PF_ETHUSD"]
    frame = _raw(product_id="PF_AAPLxUSD", qty=4.5, price=228.4, uid="u-aapl")
    [event] = kraken.normalize(frame, instruments)
    assert (event.symbol, event.market, event.side) == ("PF_AAPLxUSD", "AAPLX-PERP", "long")
    assert (event.quantity, event.size_usd) == (4.5, pytest.approx(4.5 * 228.4))


def test_dogecoin_is_written_xdg_and_named_doge() -> None:
    # Kraken writes Dogecoin XDG on the API, as it writes Bitcoin XBT: its Futures perpetual is
    # PF_XDGUSD (public clients' product tables and tests, e.g. "DOGE/USD" -> "PF_XDGUSD" and
    # a tickers row "pair": "XDG:USD"; Kraken's contract pages: "XBT is used on the API").
    # Frame in the v1 trade feed's documented shape, values ours. Every other venue's DOGE
    # perpetual is DOGE-PERP, so XDG-PERP was a market of its own.
    frame = _raw(product_id="PF_XDGUSD", qty=12000, price=0.25, uid="u-doge")
    [event] = kraken.normalize(frame)
    assert (event.market, event.side, event.quantity, event.size_usd) == (
        "DOGE-PERP",
        "long",
        12000.0,
        3000.0,
    )
    assert kraken.market_name("PF_XDGUSD") == "DOGE-PERP"
    assert kraken.market_name("FF_XDGUSD_261225") == "DOGE-20261225"
    assert kraken.market_name("PF_DOGEUSD") == "DOGE-PERP"  # the MTF's spelling
