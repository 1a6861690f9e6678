"""Bybit's recorded history: a Tardis row and the live frame of one liquidation are one event."""

from __future__ import annotations

from pathlib import Path

import pytest

from purpleflea.commands import importer
from purpleflea.commands.export import write_csv
from purpleflea.history_io import parse_tardis
from purpleflea.model import Liquidation, VenueLiquidation
from purpleflea.store.sqlite import SQLiteStore
from purpleflea.venues import bybit
from purpleflea.venues.bybit.history import same_event
from tests.events import stored_live

HEADER = "exchange,symbol,timestamp,local_timestamp,id,side,price,amount"

# Recorded 2025-02-25 (tardis-node test/mappers.test.ts, 'map bybit messages'); its snapshot
# is the row below: price 0.02456, amount 2846, side buy (S=Sell: a short was liquidated),
# timestamp T. The local time is the push's ts.
PIPPIN_FRAME = (
    b'{"topic":"allLiquidation.PIPPINUSDT","type":"snapshot","ts":1740480207578,'
    b'"data":[{"T":1740480207110,"s":"PIPPINUSDT","S":"Sell","v":"2846","p":"0.02456"}]}'
)
PIPPIN_ROW = "bybit,PIPPINUSDT,1740480207110000,1740480207578000,,buy,0.02456,2846"

# Recorded live 2026-10-09 by a public client's test (the index does not name the repository):
# Bybit pads BTCUSDT prices to the tick, "82396.90"; Tardis writes Number(p), 82396.9.
BTC_FRAME = (
    b'{"topic":"allLiquidation.BTCUSDT","type":"snapshot","ts":1791565601482,"data":['
    b'{"T":1791565600992,"s":"BTCUSDT","S":"Buy","v":"0.006","p":"82396.90"},'
    b'{"T":1791565601058,"s":"BTCUSDT","S":"Buy","v":"0.038","p":"82394.30"}]}'
)
BTC_ROWS = [
    "bybit,BTCUSDT,1791565600992000,1791565601482000,,sell,82396.9,0.006",
    "bybit,BTCUSDT,1791565601058000,1791565601482000,,sell,82394.3,0.038",
]


def _fields(event: VenueLiquidation | Liquidation) -> tuple[object, ...]:
    return (
        event.exchange,
        event.symbol,
        event.market,
        event.side,
        event.price,
        event.quantity,
        event.size_usd,
        event.ts,
    )


def test_a_recorded_row_gets_the_live_id_where_bybit_pads_nothing() -> None:
    [live] = bybit.normalize(PIPPIN_FRAME)
    [recorded] = parse_tardis([HEADER, PIPPIN_ROW], source="bybit.csv").events
    assert live.id == "bybit:PIPPINUSDT:1740480207110:Sell:2846:0.02456"
    assert recorded.id == live.id  # was bybit:PIPPINUSDT:1740480207110000:buy:2846
    assert _fields(recorded) == _fields(live)
    assert recorded.received_at == 1740480207578


def test_a_padded_price_is_spelled_canonically_and_names_the_same_event() -> None:
    live = bybit.normalize(BTC_FRAME)
    recorded = parse_tardis([HEADER, *BTC_ROWS], source="bybit.csv").events
    assert [e.id for e in live] == [
        "bybit:BTCUSDT:1791565600992:Buy:0.006:82396.90",
        "bybit:BTCUSDT:1791565601058:Buy:0.038:82394.30",
    ]
    assert [e.id for e in recorded] == [
        "bybit:BTCUSDT:1791565600992:Buy:0.006:82396.9",
        "bybit:BTCUSDT:1791565601058:Buy:0.038:82394.3",
    ]
    assert [_fields(e) for e in recorded] == [_fields(e) for e in live]
    assert all(same_event(r.id, e.id) for r, e in zip(recorded, live, strict=True))
    assert not same_event(recorded[0].id, live[1].id)
    assert not same_event(recorded[0].id, live[0].id.replace(":Buy:", ":Sell:"))


def test_two_equal_rows_of_one_message_are_two_events_numbered_as_live() -> None:
    # Two positions of one size closed at one price in one millisecond, in one push.
    frame = (
        b'{"topic":"allLiquidation.PIPPINUSDT","type":"snapshot","ts":1740480207578,"data":['
        b'{"T":1740480207110,"s":"PIPPINUSDT","S":"Sell","v":"2846","p":"0.02456"},'
        b'{"T":1740480207110,"s":"PIPPINUSDT","S":"Sell","v":"2846","p":"0.02456"}]}'
    )
    live = bybit.normalize(frame)
    recorded = parse_tardis([HEADER, PIPPIN_ROW, PIPPIN_ROW], source="bybit.csv").events
    assert [e.id for e in recorded] == [e.id for e in live]
    assert recorded[1].id.endswith("#2")
    # The same row in another message (another local time) is the same event again.
    later = PIPPIN_ROW.replace("1740480207578000", "1740480208078000")
    again = parse_tardis([HEADER, PIPPIN_ROW, later], source="bybit.csv").events
    assert again[0].id == again[1].id


async def test_importing_rows_overlapping_live_events_stores_each_once(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / importer.DB_NAME)
    live = stored_live(bybit.normalize(BTC_FRAME) + bybit.normalize(PIPPIN_FRAME), 1791565601500)
    try:
        await store.append(live)
    finally:
        await store.close()
    # One row of each live event, and one liquidation the tracker did not see (other size).
    other = BTC_ROWS[0].replace(",0.006", ",0.007")
    path = tmp_path / "bybit.csv"
    path.write_text("\n".join([HEADER, *BTC_ROWS, PIPPIN_ROW, other]) + "\n")
    [report] = await importer.import_files([path], tmp_path)
    assert (report.rows, report.new, report.stored_before) == (4, 1, 3)
    [report] = await importer.import_files([path], tmp_path)
    assert (report.new, report.stored_before) == (0, 4)


@pytest.mark.parametrize("held_events", [importer.HELD_EVENTS, 0], ids=["held", "read_again"])
async def test_an_export_of_live_events_and_rows_of_them_in_one_command_store_each_once(
    tmp_path: Path, held_events: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The files of one command are appended together (merged by time), so the rows' live
    # copies are not in the store yet when the rows are checked: they are found among the
    # export's events (the live id spells the price as padded, the row's does not). Past
    # HELD_EVENTS the files of a group are read again, and found the same way: compared by
    # exact id only, the two padded-price rows were stored a second time (new 3, not 1).
    # Found in the store alone, both copies of the three events were stored.
    monkeypatch.setattr(importer, "HELD_EVENTS", held_events)
    live = stored_live(bybit.normalize(BTC_FRAME) + bybit.normalize(PIPPIN_FRAME), 1791565601500)
    export = tmp_path / "live.csv"

    async def pages():  # type: ignore[no-untyped-def]
        yield live

    await write_csv(pages(), export)
    other = BTC_ROWS[0].replace(",0.006", ",0.007")
    rows = tmp_path / "bybit.csv"
    rows.write_text("\n".join([HEADER, *BTC_ROWS, PIPPIN_ROW, other]) + "\n")
    reports = await importer.import_files([export, rows], tmp_path / "data")
    assert [(r.new, r.stored_before) for r in reports] == [(len(live), 0), (1, 3)]
    stored = SQLiteStore(tmp_path / "data" / importer.DB_NAME, read_only=True)
    try:
        assert await stored.last_seq() == len(live) + 1
        assert len(await stored.since(0, 100)) == len(live) + 1
    finally:
        await stored.close()


def test_numbers_written_with_an_exponent_are_spelled_as_bybit_writes_them() -> None:
    # JavaScript writes a number under 1e-6 with an exponent; Bybit's frames never do.
    row = "bybit,BABYUSDT,1740480207110000,1740480207578000,,sell,1.5e-7,2e+6"
    [recorded] = parse_tardis([HEADER, row], source="bybit.csv").events
    assert recorded.id == "bybit:BABYUSDT:1740480207110:Buy:2000000:0.00000015"


def test_a_row_with_a_bybit_record_id_keeps_it() -> None:
    # Rows before 2023-04-05 may come from Bybit's REST liquidation records (tardis-node's
    # BybitLiquidationsMapper, 'generated' messages), which have ids; no live copy exists. The
    # values are a BTCUSD liquidation recorded 2022-03-06 (a public gist), the id made up.
    row = "bybit,BTCUSD,1646584807379000,1646584807500000,12345,sell,38931.5,50000"
    [recorded] = parse_tardis([HEADER, row], source="bybit.csv").events
    assert recorded.id == "bybit:BTCUSD:12345:sell:50000"
    assert (recorded.side, recorded.size_usd) == ("long", 50_000.0)


@pytest.mark.parametrize(
    ("symbol", "v", "p"),
    [
        ("SHIB1000USDT", "52000", "0.01234"),  # 1,000 SHIB a unit, behind the coin
        ("1000PEPEUSDT", "80000", "0.009870"),  # in front; a price padded to its tick
        ("BTCUSD", "12000", "95000.50"),  # inverse: USD
        ("BTCUSDZ24", "3000", "101000.00"),  # inverse, dated by month code
        ("BTC-27DEC24", "0.250", "99000"),  # linear, dated
        ("BTCPERP", "0.5", "97000.1"),  # USDC linear
    ],
)
def test_every_symbol_shape_imports_as_the_live_event(symbol: str, v: str, p: str) -> None:
    # Constructed in the recorded allLiquidation shape; the row as tardis-node writes it.
    frame = (
        f'{{"topic":"allLiquidation.{symbol}","type":"snapshot","ts":1733000000500,"data":['
        f'{{"T":1733000000123,"s":"{symbol}","S":"Sell","v":"{v}","p":"{p}"}}]}}'
    )
    [live] = bybit.normalize(frame)
    row = f"bybit,{symbol},1733000000123000,1733000000500000,,buy,{float(p)!r},{float(v)!r}"
    [recorded] = parse_tardis([HEADER, row], source="bybit.csv").events
    assert _fields(recorded) == _fields(live)
    assert same_event(recorded.id, live.id)
