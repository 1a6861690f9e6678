"""Deribit's REST payloads through our catalog parser."""

from __future__ import annotations

from purpleflea.venues.deribit import catalog

# get_instruments?currency=USDC&expired=false as recorded in bmoscon/cryptofeed
# sample_data/DERIBIT.0 (BTC_USDC-PERPETUAL created 2022-03-09), one row cut to the fields
# the catalog reads; it has "future_type" and no "instrument_type".
USDC_PERPETUAL = b"""{"result":[{"settlement_period":"perpetual","settlement_currency":"USDC",
"quote_currency":"USDC","kind":"future","is_active":true,"instrument_name":"BTC_USDC-PERPETUAL",
"future_type":"linear","contract_size":0.001,"base_currency":"BTC"}]}"""


def test_a_linear_perpetual_described_by_future_type_is_linear() -> None:
    [instrument] = catalog.parse(USDC_PERPETUAL)
    assert (instrument.symbol, instrument.kind, instrument.contract_size) == (
        "BTC_USDC-PERPETUAL",
        "linear",
        0.001,
    )
    current = USDC_PERPETUAL.replace(b'"future_type"', b'"instrument_type"')
    assert catalog.parse(current)[0].kind == "linear"


# get_instruments?currency=BTC&expired=false as recorded 2021-07-22 in bmoscon/cryptofeed
# sample_data/DERIBIT.0 (7 of its 8 BTC futures are dated), two rows cut to the fields the
# catalog reads.
BTC_FUTURES = b"""{"result":[{"settlement_period":"month","quote_currency":"USD","kind":"future",
"is_active":true,"instrument_name":"BTC-24SEP21","contract_size":10.0,"base_currency":"BTC"},
{"settlement_period":"perpetual","quote_currency":"USD","kind":"future","is_active":true,
"instrument_name":"BTC-PERPETUAL","contract_size":10.0,"base_currency":"BTC"}]}"""


def test_dated_futures_are_listed_beside_the_perpetuals() -> None:
    assert [(i.symbol, i.kind, i.contract_size) for i in catalog.parse(BTC_FUTURES)] == [
        ("BTC-24SEP21", "inverse", 10.0),
        ("BTC-PERPETUAL", "inverse", 10.0),
    ]
