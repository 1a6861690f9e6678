"""Deribit's recorded history: a Tardis row and the live frame of one liquidation agree."""

from __future__ import annotations

from purpleflea.history_io import parse_tardis
from purpleflea.venues import deribit

HEADER = "exchange,symbol,timestamp,local_timestamp,id,side,price,amount"

# A BTC-PERPETUAL trade of the 2020-03-13 crash whose maker was liquidated, as recorded live
# (tardis-node test/mappers.test.ts; shared/fixtures deribit_trades_liquidation_maker_...).
LIVE_FRAME = (
    b'{"jsonrpc":"2.0","method":"subscription","params":{"channel":"trades.BTC-PERPETUAL.raw",'
    b'"data":[{"trade_seq":40782080,"trade_id":"66460626","timestamp":1584058067675,'
    b'"tick_direction":3,"price":4458.5,"liquidation":"M","instrument_name":"BTC-PERPETUAL",'
    b'"index_price":4793.6,"direction":"buy","amount":2500}]}}'
)
# The row tardis-node's Deribit mapper (src/mappers/deribit.ts) writes for it: id = trade_id,
# side = the maker's (the taker bought, so the liquidated maker sold), time in microseconds.
TARDIS_ROW = "deribit,BTC-PERPETUAL,1584058067675000,1584058067801000,66460626,sell,4458.5,2500"


def test_a_recorded_row_gets_the_live_id_so_both_copies_dedupe() -> None:
    [live] = deribit.normalize(LIVE_FRAME)
    [recorded] = parse_tardis([HEADER, TARDIS_ROW], source="deribit.csv").events
    assert live.id == "deribit:66460626:long"
    assert recorded.id == live.id  # was deribit:BTC-PERPETUAL:66460626:sell:2500
    assert (recorded.side, recorded.price, recorded.size_usd, recorded.ts) == (
        live.side,
        live.price,
        live.size_usd,
        live.ts,
    )


def test_a_row_without_tardis_id_keeps_the_generic_id() -> None:
    row = TARDIS_ROW.replace(",66460626,", ",,")
    [recorded] = parse_tardis([HEADER, row], source="deribit.csv").events
    assert recorded.id == "deribit:BTC-PERPETUAL:1584058067675000:sell:2500"


def test_a_trade_that_liquidated_both_sides_has_one_row_the_makers() -> None:
    # Constructed in the recorded shape (no recorded MT trade is public): the taker bought, so a
    # short was liquidated by the taker's order and a long by the maker's. tardis-node's mapper
    # writes one row, side = the maker's (anything but T); the taker's liquidation is not in
    # the file, and nothing in the row says it was an MT trade.
    frame = (
        b'{"jsonrpc":"2.0","method":"subscription","params":{"channel":"trades.BTC-PERPETUAL.100ms",'
        b'"data":[{"trade_seq":190001,"trade_id":"312345678","timestamp":1718000000123,'
        b'"price":60123.5,"liquidation":"MT","instrument_name":"BTC-PERPETUAL",'
        b'"direction":"buy","amount":25000}]}}'
    )
    live = deribit.normalize(frame)
    assert sorted(e.id for e in live) == ["deribit:312345678:long", "deribit:312345678:short"]
    row = "deribit,BTC-PERPETUAL,1718000000123000,1718000000200000,312345678,sell,60123.5,25000"
    [recorded] = parse_tardis([HEADER, row], source="deribit.csv").events
    assert recorded.id == "deribit:312345678:long"


def test_an_option_row_is_ignored_as_the_live_feed_ignores_the_trade() -> None:
    # The recorded trade as if it were an option's: the live normalizer gives no event of it.
    option_frame = LIVE_FRAME.replace(b"BTC-PERPETUAL", b"BTC-13MAR20-5000-P")
    assert deribit.normalize(option_frame) == []
    row = TARDIS_ROW.replace("BTC-PERPETUAL", "BTC-13MAR20-5000-P")
    parsed = parse_tardis([HEADER, row, TARDIS_ROW], source="deribit.csv")
    assert (len(parsed.events), parsed.ignored, parsed.bad) == (1, 1, [])
