"""Binance's recorded history: Tardis rows and the live frames of the same liquidations."""

from __future__ import annotations

from pathlib import Path

import pytest

from purpleflea.commands import importer
from purpleflea.history_io import parse_tardis
from purpleflea.store.sqlite import SQLiteStore
from purpleflea.venues.binance import normalize_coinm, normalize_usdm
from tests.events import stored_live

HEADER = "exchange,symbol,timestamp,local_timestamp,id,side,price,amount"

# Both recorded (tardis-node test/mappers.test.ts, 'map binance delivery/futures messages'),
# with the rows its mapper (src/mappers/binance.ts) writes for them: price o.p, amount o.z,
# side o.S, timestamp o.T. The local times are ours (the test's are made up).
COINM_FRAME = (  # 2020-07-13, 3 contracts of 100 USD
    b'{"stream":"btcusd_200925@forceOrder","data":{"e":"forceOrder","E":1594622954023,"o":{'
    b'"s":"BTCUSD_200925","ps":"BTCUSD","S":"SELL","o":"LIMIT","f":"IOC","q":"3",'
    b'"p":"9314.5","ap":"9352.7","X":"FILLED","l":"3","z":"3","T":1594622954021}}}'
)
COINM_ROW = "binance-delivery,BTCUSD_200925,1594622954021000,1594622954100000,,sell,9314.5,3"
USDM_FRAME = (  # 2020-03-13
    b'{"stream":"btcusdt@forceOrder","data":{"e":"forceOrder","E":1584059031426,"o":{'
    b'"s":"BTCUSDT","S":"BUY","o":"LIMIT","f":"IOC","q":"0.014","p":"4793.91","ap":"4706.04",'
    b'"X":"FILLED","l":"0.015","z":"0.014","T":1584059031421}}}'
)
USDM_ROW = "binance-futures,BTCUSDT,1584059031421000,1584059031500000,,buy,4793.91,0.014"


def test_a_coinm_row_gets_the_live_id_so_both_copies_dedupe() -> None:
    [live] = normalize_coinm(COINM_FRAME)
    [recorded] = parse_tardis([HEADER, COINM_ROW], source="delivery.csv").events
    assert live.id == "binance_coinm:BTCUSD_200925:1594622954021:SELL:3"
    assert recorded.id == live.id  # was binance_coinm:BTCUSD_200925:1594622954021000:sell:3
    assert (recorded.market, recorded.side, recorded.size_usd, recorded.ts) == (
        live.market,
        live.side,
        live.size_usd,
        live.ts,
    )
    # Tardis's price is the order's limit (o.p), the live one the average fill (o.ap): the
    # USD size is the contracts' and agrees, the coins follow the price.
    assert (recorded.price, live.price) == (9314.5, 9352.7)
    assert recorded.quantity == pytest.approx(300 / 9314.5)


def test_a_usdm_row_is_the_live_event_but_for_the_price() -> None:
    [live] = normalize_usdm(USDM_FRAME)
    [recorded] = parse_tardis([HEADER, USDM_ROW], source="futures.csv").events
    assert recorded.id == live.id == "binance_usdm:BTCUSDT:1584059031421:BUY"
    assert (recorded.market, recorded.side, recorded.quantity, recorded.ts) == (
        live.market,
        live.side,
        live.quantity,
        live.ts,
    )
    assert (recorded.price, live.price) == (4793.91, 4706.04)  # o.p, o.ap: 1.9 % apart


async def test_a_coinm_row_of_the_last_fill_finds_its_live_copy(tmp_path: Path) -> None:
    # The recorded order as if filled in two parts (l 1 of z 3): a file tardis-node mapped
    # while it read o.l has amount 1, so the row rebuilds ...:SELL:1, not the live ...:SELL:3.
    frame = COINM_FRAME.replace(b'"l":"3"', b'"l":"1"')
    store = SQLiteStore(tmp_path / importer.DB_NAME)
    try:
        await store.append(stored_live(normalize_coinm(frame), 1594622954100))
    finally:
        await store.close()
    last_fill = COINM_ROW.rpartition(",")[0] + ",1"
    later = last_fill.replace("1594622954021000", "1594622955021000")  # another second's
    path = tmp_path / "delivery.csv"
    path.write_text("\n".join([HEADER, last_fill, later]) + "\n")
    [report] = await importer.import_files([path], tmp_path)
    assert (report.new, report.stored_before) == (1, 1)


def test_a_usdm_row_not_quoted_in_usd_is_ignored_as_live_drops_it_unsized() -> None:
    # The recorded order as if of the old ETHBTC perpetual: the live event has no dollars (the
    # connection counts it as unsized and delivers nothing), so the row stores nothing either.
    frame = USDM_FRAME.replace(b"btcusdt", b"ethbtc").replace(b"BTCUSDT", b"ETHBTC")
    [live] = normalize_usdm(frame)
    assert live.size_usd is None
    row = USDM_ROW.replace("BTCUSDT", "ETHBTC")
    parsed = parse_tardis([HEADER, row, USDM_ROW], source="futures.csv")
    assert (len(parsed.events), parsed.ignored, parsed.bad) == (1, 1, [])
