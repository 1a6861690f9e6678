"""Importing the real Binance recordings and Tardis CSV: exact events, all-or-nothing, dedupe."""

from __future__ import annotations

import argparse
import asyncio
import gzip
import json
import os
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec
import pytest

from purpleflea.commands import importer
from purpleflea.commands.export import iter_events
from purpleflea.history_io import parse_recorder_csv, parse_tardis
from purpleflea.model import Liquidation
from purpleflea.store.lock import exclusive
from purpleflea.store.sqlite import SQLiteStore
from purpleflea.venues.binance import normalize_usdm
from tests.conftest import shared_dir

REAL = shared_dir() / "data" / "real"
#: SOURCES.md's row counts.
FILES = {
    "BandsThoBaby_Data_Streams_Project/binance.csv": 456,
    "BandsThoBaby_Data_Streams_Project/binance_bigliqs.csv": 385,
    "riftfern_data-streams/binance.csv": 2_045,
    "NeoParth_strategies/binance.csv": 700,
}
GOOD = [name for name in FILES if not name.startswith("NeoParth")]


def _row(name: str, line: int) -> list[str]:
    return (REAL / name).read_text().splitlines()[line - 1].split(",")


def _parse(name: str, **options: str) -> dict[str, Liquidation]:
    with (REAL / name).open() as handle:
        parsed = parse_recorder_csv("binance-csv", handle, source=name, **options)  # type: ignore[arg-type]
    return {e.id: e for e in parsed.events}


async def _stored(data_dir: Path) -> list[Liquidation]:
    store = SQLiteStore(data_dir / "purpleflea.sqlite", read_only=True)
    try:
        return [e async for page in iter_events(store) for e in page]
    finally:
        await store.close()


async def _import(data_dir: Path, *paths: Path, **options: object) -> list[importer.FileReport]:
    return await importer.import_files(list(paths), data_dir, **options)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("name", "line"),
    [
        ("BandsThoBaby_Data_Streams_Project/binance.csv", 1),
        ("BandsThoBaby_Data_Streams_Project/binance_bigliqs.csv", 378),  # full symbol kept
        ("riftfern_data-streams/binance.csv", 33),
        ("riftfern_data-streams/binance.csv", 2_045),  # 13 columns (tier)
    ],
)
def test_a_row_becomes_the_event_recomputed_by_hand(name: str, line: int) -> None:
    row = _row(name, line)
    symbol = row[0] if row[0].endswith("USDT") else row[0] + "USDT"
    z, ap, t = float(row[9]), float(row[6]), int(row[10])
    event = _parse(name)[f"binance_usdm:{symbol}:{t}:{row[1]}"]
    assert event.side == ("long" if row[1] == "SELL" else "short")
    assert event.size_usd == pytest.approx(z * ap, rel=1e-12)
    assert event.price == ap
    assert event.quantity == z
    assert event.ts == t
    assert event.market == symbol.removesuffix("USDT") + "-PERP"


def test_multiplier_and_quote_and_dated_symbols_follow_the_market_naming() -> None:
    events = list(_parse("riftfern_data-streams/binance.csv").values())
    assert any(e.symbol == "1000PEPEUSDT" for e in events)
    row = _row("riftfern_data-streams/binance.csv", 362)  # 1000PEPE: z in thousands of coins
    assert row[0] == "1000PEPE"
    z, ap = float(row[9]), float(row[6])
    pepe = _parse("riftfern_data-streams/binance.csv")[f"binance_usdm:1000PEPEUSDT:{row[10]}:BUY"]
    assert pepe.market == "PEPE-PERP"
    # Real coins and the real coin price: the x1000 multiplier is applied to both, so the
    # notional stays what the exchange reported (z x ap), and neither alone is left unscaled.
    assert pepe.quantity == pytest.approx(z * 1000, rel=1e-12)
    assert pepe.price == pytest.approx(ap / 1000, rel=1e-12)
    assert pepe.size_usd == pytest.approx(z * ap, rel=1e-12)
    usdc = next(e for e in events if e.symbol.endswith("USDC"))
    assert usdc.market == usdc.symbol.removesuffix("USDC").removeprefix("1000") + "-PERP"
    neo = _parse("NeoParth_strategies/binance.csv", price_fallback="order")
    row = _row("NeoParth_strategies/binance.csv", 685)  # ETH_250627, average_price None
    dated = neo[f"binance_usdm:ETHUSDT_250627:{row[10]}:SELL"]
    assert (dated.market, dated.side) == ("ETH-20250627", "long")
    assert dated.size_usd == pytest.approx(0.003 * float(row[5]))  # z x p: the fallback


def test_an_imported_row_has_the_id_of_the_same_live_event() -> None:
    name, line = "BandsThoBaby_Data_Streams_Project/binance_bigliqs.csv", 3
    row = _row(name, line)
    frame = {
        "e": "forceOrder",
        "E": int(row[10]) + 5,
        "o": {
            "s": row[0] + "USDT",
            "S": row[1],
            "o": row[2],
            "f": row[3],
            "q": row[4],
            "p": row[5],
            "ap": row[6],
            "X": row[7],
            "l": row[8],
            "z": row[9],
            "T": int(row[10]),
        },
    }
    [live] = normalize_usdm(json.dumps(frame))
    imported = _parse(name)[live.id]
    assert (imported.market, imported.side, imported.price) == (live.market, live.side, live.price)
    assert (imported.quantity, imported.size_usd) == (live.quantity, live.size_usd)


#: Each import test below runs as a command holds its files' events (the default), and as one
#: past ``importer.HELD_EVENTS`` from its first file, which reads them again, a group of files
#: overlapping in time at once: the stored history and the reports must be the same.
HELD = pytest.mark.parametrize("held_events", [importer.HELD_EVENTS, 0], ids=["held", "read_again"])


@HELD
async def test_real_recordings_import_exactly_once(
    tmp_path: Path, held_events: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(importer, "HELD_EVENTS", held_events)
    paths = [REAL / name for name in FILES]
    reports = await _import(tmp_path, *paths)
    by_name = {str(r.path.relative_to(REAL)): r for r in reports}
    for name in GOOD:
        report = by_name[name]
        assert report.imported
        assert report.format == "binance-csv"
        assert (report.rows, report.new, report.stored_before) == (FILES[name], FILES[name], 0)
    neo = by_name["NeoParth_strategies/binance.csv"]
    assert not neo.imported
    assert neo.new == 0
    assert len(neo.bad) == 700
    assert neo.bad[0].line == 1
    assert "average_price is 'None'" in neo.bad[0].reason
    assert str(neo.bad[41]).startswith(f"{REAL / 'NeoParth_strategies/binance.csv'}:42: ")

    stored = await _stored(tmp_path)
    expected = {e.id: e for name in GOOD for e in _parse(name).values()}
    assert len(stored) == sum(FILES[n] for n in GOOD) == len(expected)
    assert {e.id: e for e in stored} == {
        i: Liquidation(**(e.to_dict() | {"seq": s.seq}))
        for s in stored
        for i, e in [(s.id, expected[s.id])]
    }
    assert [e.seq for e in stored] == list(range(1, len(stored) + 1))
    assert [e.ts for e in stored] == sorted(e.ts for e in stored)  # seq follows time

    again = await _import(tmp_path, *paths, price_fallback="order")
    assert [(r.new, r.stored_before) for r in again[:-1]] == [
        (0, FILES[n]) for n in list(FILES)[:-1]
    ]
    # The fallback reads NeoParth's rows, but they (2025-06) are older than riftfern's
    # (2025-12) of the same markets: appended now they would go back in time, so refused.
    neo = again[-1]
    assert (neo.imported, neo.new, neo.bad) == (False, 0, [])
    assert neo.late
    for overlap in neo.late:  # each names a market and when both sides of it are
        assert overlap.exchange == "binance_usdm"
        assert overlap.oldest_ms < 1_751_328_000_000 < overlap.stored_ms  # 2025-07-01
    assert len(await _stored(tmp_path)) == sum(FILES[n] for n in GOOD)
    # In time order, into another folder, every file goes in, once.
    ordered = [REAL / n for n in (*GOOD[:2], "NeoParth_strategies/binance.csv", GOOD[2])]
    fresh = await _import(tmp_path / "ordered", *ordered, price_fallback="order")
    assert [r.new for r in fresh] == [FILES[p] for p in (*GOOD[:2], list(FILES)[-1], GOOD[2])]
    assert (await _import(tmp_path / "ordered", ordered[2], price_fallback="order"))[0].new == 0
    stored = await _stored(tmp_path / "ordered")
    assert len(stored) == sum(FILES.values())
    assert [e.ts for e in stored] == sorted(e.ts for e in stored)


@HELD
async def test_two_recordings_overlapping_in_time_imported_together_store_their_union(
    tmp_path: Path, held_events: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(importer, "HELD_EVENTS", held_events)
    # Two recorders of the same stream over the same hours, each missing some events (here
    # riftfern's rows split: every row but each third, and every second row). Given in one
    # command, every event either saw is stored once, in time order. Before, the second file
    # was refused whole (its new events were older than the first file's newest of their
    # market): the 340 events only it had were lost, whichever order the files came in.
    name = "riftfern_data-streams/binance.csv"
    lines = (REAL / name).read_text().splitlines(keepends=True)
    first, second = tmp_path / "a.csv", tmp_path / "b.csv"
    first.write_text("".join(line for n, line in enumerate(lines, 1) if n % 3))
    second.write_text("".join(line for n, line in enumerate(lines, 1) if n % 2 == 0))
    union = {n for n in range(1, len(lines) + 1) if n % 3 or n % 2 == 0}
    for order in ((first, second), (second, first)):
        data = tmp_path / f"data-{order[0].stem}"
        reports = await _import(data, *order)
        assert [r.imported for r in reports] == [True, True]
        assert sum(r.new for r in reports) == len(union) == 1_704
        # The second file's events the first also holds are already stored; the rest new.
        both = sum(1 for n in union if n % 3 and n % 2 == 0)
        assert (reports[1].stored_before, reports[1].new) == (both, reports[1].rows - both)
        stored = await _stored(data)
        expected = _parse(name)
        assert len(stored) == len(union)
        assert all(e.to_dict() | {"seq": 0} == expected[e.id].to_dict() for e in stored)
        assert [e.seq for e in stored] == list(range(1, len(union) + 1))
        assert [e.ts for e in stored] == sorted(e.ts for e in stored)


async def test_skip_bad_imports_the_good_rows_and_reports_the_bad(tmp_path: Path) -> None:
    lines = (REAL / GOOD[0]).read_text().splitlines()[:5]
    lines[2] = lines[2].replace(",BUY,", ",HOLD,").replace(",SELL,", ",HOLD,")
    lines[3] = ",".join(lines[3].split(",")[:5])
    bad = tmp_path / "bad.csv"
    bad.write_text("\n".join(lines) + "\n")
    [report] = await _import(tmp_path / "a", bad, fmt="binance-csv")
    assert (not report.imported and not (tmp_path / "a" / "purpleflea.sqlite").exists()) or (
        await _stored(tmp_path / "a") == []
    )
    assert [(b.line, b.reason) for b in report.bad] == [
        (3, "side (order side) must be BUY or SELL, got 'HOLD'"),
        (4, "expected 12 columns (13 with tier), got 5"),
    ]
    [report] = await _import(tmp_path / "a", bad, skip_bad=True)
    assert report.imported
    assert report.new == 3
    assert len(report.bad) == 2


def _tardis(path: Path, rows: list[str]) -> Path:
    header = "exchange,symbol,timestamp,local_timestamp,id,side,price,amount"
    with gzip.open(path, "wt") as handle:
        handle.write("\n".join([header, *rows]) + "\n")
    return path


async def test_tardis_rows_are_sized_by_exchange_and_dedupe_with_the_binance_recording(
    tmp_path: Path,
) -> None:
    row = _row(GOOD[0], 1)  # RARE,BUY,...,z=4421,ap=0.2185,T=1723895903305
    t_us = int(row[10]) * 1000
    path = _tardis(
        tmp_path / "liq.csv.gz",
        [
            f"binance-futures,RAREUSDT,{t_us},{t_us + 2500},,buy,{row[6]},{row[9]}",
            "bybit,BTCUSD,1723895903305000,1723895903306000,,sell,60000,1200",
            "deribit,ETH-PERPETUAL,1723895903305000,,,sell,2500.5,100",
            "binance-delivery,BTCUSD_PERP,1723895903305000,,,buy,60000,3",
            "okex-swap,BTC-USDT-SWAP,1723895903305000,,,buy,60000,3",
        ],
    )
    [report] = await _import(tmp_path, path)
    assert report.format == "tardis"
    assert not report.imported
    assert [(b.line, b.reason.split(":")[0]) for b in report.bad] == [
        (6, "exchange 'okex-swap' is not supported")
    ]
    [report] = await _import(tmp_path, path, skip_bad=True)
    assert report.new == 4
    events = {e.exchange: e for e in await _stored(tmp_path)}
    assert events["binance_usdm"].id == f"binance_usdm:RAREUSDT:{row[10]}:BUY"
    assert events["binance_usdm"].side == "short"
    assert events["binance_usdm"].received_at == int(row[10]) + 2
    assert (events["bybit"].side, events["bybit"].size_usd) == ("long", 1200.0)  # inverse: USD
    assert events["bybit"].quantity == pytest.approx(0.02)
    assert (events["deribit"].market, events["deribit"].size_usd) == ("ETH-PERP", 100.0)
    assert events["binance_coinm"].size_usd == 300.0  # 3 contracts of 100 USD

    [recording] = await _import(tmp_path, REAL / GOOD[0])
    assert (recording.new, recording.stored_before) == (FILES[GOOD[0]] - 1, 1)


def test_the_cli_refuses_a_data_dir_a_server_is_writing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    parser = argparse.ArgumentParser()
    importer.register(parser.add_subparsers())
    args = parser.parse_args(
        ["import", str(REAL / GOOD[0]), "--data-dir", str(tmp_path), "--no-progress"]
    )
    with exclusive(tmp_path, "purpleflea serve on port 8000"):
        assert args.run(args) == 2
    assert "in use by purpleflea serve on port 8000" in capsys.readouterr().err
    assert args.run(args) == 0
    out = capsys.readouterr().out
    assert "456 rows -> 456 new, 0 already stored" in out
    assert args.run(args) == 0
    assert "0 new, 456 already stored" in capsys.readouterr().out


def test_tardis_rows_use_the_venue_market_rules() -> None:
    header = "exchange,symbol,timestamp,local_timestamp,id,side,price,amount"
    parsed = parse_tardis(
        [
            header,
            "deribit,BTC-27DEC24,1723895903305000,,7,sell,60000,600",  # inverse future: USD
            "deribit,SOL_USDC-PERPETUAL,1723895903305000,,8,buy,150,2",  # linear: coins
            "deribit,BTC-27DEC24-50000-C,1723895903305000,,9,sell,0.05,1",  # an option
            "bybit,BTC-27DEC24,1723895903305000,,,sell,60000,0.5",  # linear dated: coins
        ],
        source="t.csv",
    )
    future, linear, dated = parsed.events
    assert (future.market, future.size_usd, future.quantity) == ("BTC-20241227", 600.0, 0.01)
    assert (linear.market, linear.side, linear.size_usd) == ("SOL-PERP", "short", 300.0)
    assert (dated.market, dated.quantity, dated.size_usd) == ("BTC-20241227", 0.5, 30_000.0)
    # The live feed gives no event of an option's liquidation: the row is ignored, counted,
    # and does not refuse the file (it was a bad row).
    assert (parsed.bad, parsed.ignored) == ([], 1)


async def test_rows_imported_under_the_ids_earlier_versions_gave_them_are_not_stored_again(
    tmp_path: Path,
) -> None:
    # Bybit, Deribit and COIN-M rows got the generic {exchange}:{symbol}:{id or timestamp}:
    # {order side}:{amount} before they rebuilt the live id; a store may hold them so.
    rows = [
        "bybit,PIPPINUSDT,1740480207110000,1740480207578000,,buy,0.02456,2846",
        "deribit,BTC-PERPETUAL,1584058067675000,1584058067801000,66460626,sell,4458.5,2500",
        "binance-delivery,BTCUSD_200925,1594622954021000,1594622954100000,,sell,9314.5,3",
    ]
    earlier = [
        "bybit:PIPPINUSDT:1740480207110000:buy:2846",
        "deribit:BTC-PERPETUAL:66460626:sell:2500",
        "binance_coinm:BTCUSD_200925:1594622954021000:sell:3",
    ]
    header = "exchange,symbol,timestamp,local_timestamp,id,side,price,amount"
    events = parse_tardis([header, *rows], source="t.csv").events
    assert [e.id for e in events] != earlier  # the live ids now
    store = SQLiteStore(tmp_path / importer.DB_NAME)
    try:
        await store.append(
            [
                msgspec.structs.replace(event, id=old, seq=seq)
                for seq, (event, old) in enumerate(zip(events, earlier, strict=True), 1)
            ]
        )
    finally:
        await store.close()
    path = _tardis(tmp_path / "liq.csv.gz", rows)
    [report] = await _import(tmp_path, path)
    assert (report.new, report.stored_before) == (0, 3)


def test_a_file_of_no_known_format_is_reported_as_such_not_as_bad_rows(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A positions file (shared/data/real/wangrdotcom_wangrcli/liquidations.csv has this header)
    # was reported as "1 bad row(s) of 0 (fix them, or pass --skip-bad ...)": --skip-bad
    # cannot help a file nothing can read.
    positions = tmp_path / "positions.csv"
    positions.write_text(
        "coin,wallet,side,size,entry_price,liquidation_price\nBTC,0x1,long,1,2,3\n"
    )
    parser = argparse.ArgumentParser()
    importer.register(parser.add_subparsers())
    args = parser.parse_args(["import", str(positions), "--data-dir", str(tmp_path / "d")])
    assert args.run(args) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[0] == (
        f"{positions}: NOT imported: cannot tell the format from the first line (not a Tardis "
        "or Purple Flea header, nor a row of binance-csv): "
        "'coin,wallet,side,size,entry_price,liquidation_price'; pass --format"
    )
    assert not any("skip-bad" in line or "bad row" in line for line in out)


@pytest.mark.parametrize("fmt", ["purpleflea-csv", "tardis", "parquet"])
def test_a_file_without_the_formats_columns_is_not_imported_even_with_skip_bad(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], fmt: str
) -> None:
    # A file of another schema under --format (a Parquet file is told by its magic bytes:
    # shared/data/real/0xknxwledge_group-m-finm33150-final/liquidations.parquet) was "1 bad
    # row(s) of 0 (fix them, or pass --skip-bad to import the good rows)"; with --skip-bad it
    # "imported" 0 rows and the command exited 0, as if the file had been stored.
    path = tmp_path / ("other.parquet" if fmt == "parquet" else "other.csv")
    if fmt == "parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        pq.write_table(pa.table({"time": [1, 2], "usd": [3.0, 4.0]}), path)
    else:
        path.write_text("time,usd\n1,3.0\n2,4.0\n")
    parser = argparse.ArgumentParser()
    importer.register(parser.add_subparsers())
    for extra in ([], ["--skip-bad"]):
        argv = ["import", str(path), "--format", fmt, "--data-dir", str(tmp_path / "d")]
        args = parser.parse_args([*argv, "--no-progress", *extra])
        assert args.run(args) == 1, extra
        out = capsys.readouterr().out.splitlines()
        assert out[0].startswith(f"{path}: NOT imported: not a {fmt} file: "), out
        assert "lacks column(s)" in out[0]
        assert not any("skip-bad" in line or "bad row" in line for line in out), out


def test_files_are_read_again_in_groups_overlapping_in_time(tmp_path: Path) -> None:
    # Past HELD_EVENTS the command holds one group at a time: files that share no time are
    # groups of their own, in time order, whatever order they were given in.
    def report(name: str) -> importer.FileReport:
        return importer.FileReport(tmp_path / name, "binance-csv")

    march, april, april_late, june = (report(n) for n in ("mar", "apr", "apr2", "jun"))
    spans = [(600, 700, june), (300, 400, april), (100, 200, march), (400, 450, april_late)]
    assert importer._overlapping(spans) == [[march], [april, april_late], [june]]


def _recorder_row(minute: int) -> str:
    """One line of a recorder's CSV (riftfern's columns): a BTC long liquidated ``minute``
    minutes after 2025-12-27 14:31 UTC."""
    ts = 1_766_845_883_281 + minute * 60_000
    return f"BTC,SELL,LIMIT,IOC,0.01,87000.0,87000.0,FILLED,0.01,0.01,{ts},870.0\n"


async def test_a_file_whose_events_an_earlier_file_holds_is_not_refused_when_read_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Two recorders of one stream: A from minute 100 to 200, B from minute 10 to 150, B
    # missing every odd minute from 100 (its events there are all A's). B's new events at
    # the first read (A's ids taken) end at minute 20: its group went before A's, B was
    # read again without A's ids and stored its events up to minute 150, and A's odd
    # minutes 101-149 were then "older than the store": A was refused whole ("changed
    # since it was first read"), 51 of its events lost, though neither file changed.
    first, second = tmp_path / "a.csv", tmp_path / "b.csv"
    first.write_text("".join(_recorder_row(m) for m in range(100, 201)))
    second.write_text("".join(_recorder_row(m) for m in [*range(10, 21), *range(100, 151, 2)]))
    monkeypatch.setattr(importer, "HELD_EVENTS", 101)  # A is held, B goes past it
    reports = await _import(tmp_path / "data", first, second)
    assert [(r.imported, r.unreadable) for r in reports] == [(True, None), (True, None)]
    assert [(r.new, r.stored_before) for r in reports] == [(101, 0), (11, 26)]
    stored = await _stored(tmp_path / "data")
    assert len(stored) == 101 + 11
    assert [e.ts for e in stored] == sorted(e.ts for e in stored)


def _after_first_read(
    monkeypatch: pytest.MonkeyPatch, file: Path, change: Callable[[], object]
) -> None:
    """``change()`` runs once, right after the command's first read of ``file``: what
    happens to a file between the reads of one command past HELD_EVENTS."""
    first_read = importer.read_file
    changed: list[bool] = []

    def read_file(path: Path, fmt: str, **options: object) -> object:
        parsed = first_read(path, fmt, **options)  # type: ignore[arg-type]
        if path == file and not changed:
            changed.append(True)
            change()
        return parsed

    monkeypatch.setattr(importer, "read_file", read_file)


def _append_text(path: Path, text: str) -> None:
    with path.open("a") as handle:
        handle.write(text)


async def test_a_file_gone_before_its_second_read_is_reported_not_a_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Read again past HELD_EVENTS, a file removed (or made unreadable) since its first read
    # says so in its report; the other files go in.
    monkeypatch.setattr(importer, "HELD_EVENTS", 0)
    kept, gone = REAL / GOOD[2], tmp_path / "gone.csv"
    gone.write_bytes((REAL / GOOD[0]).read_bytes())
    _after_first_read(monkeypatch, gone, gone.unlink)  # between this command's two reads
    reports = await _import(tmp_path / "data", gone, kept)
    assert [r.imported for r in reports] == [False, True]
    assert reports[0].unreadable is not None
    assert reports[0].unreadable.startswith("could not be read again: ")
    assert (reports[0].new, reports[1].new) == (0, FILES[GOOD[2]])
    assert len(await _stored(tmp_path / "data")) == FILES[GOOD[2]]


async def test_a_file_changed_before_its_second_read_is_reported_not_a_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A file replaced between the reads (its bytes the first read took are not there now):
    # refused at its second read, it is reported NOT imported and the other files go in. It
    # was an AssertionError traceback ("cannot happen"), after the groups before it were
    # stored.
    monkeypatch.setattr(importer, "HELD_EVENTS", 0)
    kept, replaced = REAL / GOOD[2], tmp_path / "replaced.csv"
    original = (REAL / GOOD[0]).read_bytes()
    replaced.write_bytes(original)
    lines = original.splitlines(keepends=True)
    other = b"".join([lines[0], *lines[1:][::-1]])  # the same rows in another order
    _after_first_read(monkeypatch, replaced, lambda: replaced.write_bytes(other))
    reports = await _import(tmp_path / "data", replaced, kept)
    assert [r.imported for r in reports] == [False, True]
    assert reports[0].unreadable is not None
    assert reports[0].unreadable.startswith("changed since it was first read (its bytes")
    assert (reports[0].new, reports[1].new) == (0, FILES[GOOD[2]])
    assert len(await _stored(tmp_path / "data")) == FILES[GOOD[2]]
    assert "NOT imported" in importer.describe(reports[0])[0]


@pytest.mark.parametrize("added", ["whole", "half"])
async def test_a_file_grown_before_its_second_read_is_read_as_the_first_read_saw_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, added: str
) -> None:
    # A recorder still writing its file adds lines, newer than the file's first read. Read
    # again whole, they were appended with its group, ahead of the later group's events, and
    # the later file was refused as older than the store, for good. Then the file that grew
    # was refused instead: the later file went in, and the grown file's rows, older than it,
    # were refused as older than the store at every run again. Now its second read takes the
    # bytes its first read took (the same ones, checked): both files go in, in time order,
    # and the lines added since go in with the next import of the file.
    monkeypatch.setattr(importer, "HELD_EVENTS", 0)
    lines = (REAL / GOOD[2]).read_text().splitlines(keepends=True)  # time order
    growing, later = tmp_path / "growing.csv", tmp_path / "later.csv"
    growing.write_text("".join(lines[:1000]))
    later.write_text("".join(lines[1000:-1]))
    # The recorder's next line (the newest PIEVERSE), whole or half written:
    last = lines[-1] if added == "whole" else lines[-1][:20]
    _after_first_read(monkeypatch, growing, lambda: _append_text(growing, last))
    reports = await _import(tmp_path / "data", growing, later)
    assert [r.imported for r in reports] == [True, True], [r.unreadable for r in reports]
    assert (reports[0].new, reports[1].new) == (1000, len(lines) - 1001)
    assert reports[0].left_out == len(last.encode())
    assert "left out" in importer.describe(reports[0])[0]
    stored = await _stored(tmp_path / "data")
    assert len(stored) == len(lines) - 1
    assert [e.ts for e in stored] == sorted(e.ts for e in stored)
    if added == "half":
        _append_text(growing, lines[-1][20:])  # the recorder finishes its line
    again = await _import(tmp_path / "data", growing)
    assert (again[0].imported, again[0].new, again[0].stored_before) == (True, 1, 1000)
    assert len(await _stored(tmp_path / "data")) == len(lines)


async def test_past_held_events_the_command_keeps_no_id_of_the_files_read_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Every new event's id stayed in the command's set for its whole first pass, also past
    # HELD_EVENTS, where the events themselves are let go: ~130 bytes an id (an 88-byte
    # string and its set slot), 1.3 GB for 10M new events. Now the ids a read again needs are
    # those of its group's earlier files; the reports say what they said before.
    monkeypatch.setattr(importer, "HELD_EVENTS", 0)
    sizes: list[int] = []
    new_events = importer._new_events

    def counted(*args: Any) -> list[Liquidation]:
        sizes.append(len(args[4]))  # taken
        return new_events(*args)

    monkeypatch.setattr(importer, "_new_events", counted)
    paths = [REAL / name for name in GOOD]
    reports = await _import(tmp_path / "data", *paths, paths[0])  # the first again, last
    largest = max(FILES[name] for name in GOOD)
    assert max(sizes) < largest, sizes
    assert [(r.new, r.stored_before) for r in reports] == [
        *((FILES[name], 0) for name in GOOD),
        (0, FILES[GOOD[0]]),  # its group's earlier file brings them all
    ]
    assert len(await _stored(tmp_path / "data")) == sum(FILES[name] for name in GOOD)


def _import_command(data_dir: Path, *files: Path) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    importer.register(parser.add_subparsers())
    names = [str(file) for file in files]
    return parser.parse_args(["import", *names, "--data-dir", str(data_dir), "--no-progress"])


@HELD
def test_a_pipe_is_imported_whole(
    tmp_path: Path,
    held_events: int,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # `purpleflea export ... | purpleflea import /dev/stdin`, or a FIFO: a pipe gives its bytes
    # once, and a file is read more than once (its format, its rows, and again past
    # HELD_EVENTS). It was refused as "no such file"; read in place, the format's first
    # line would be gone from the rows and a read again would find nothing.
    monkeypatch.setattr(importer, "HELD_EVENTS", held_events)
    rows = "".join(_recorder_row(m) for m in range(40))
    pipe = tmp_path / "pipe"
    os.mkfifo(pipe)
    writer = threading.Thread(target=pipe.write_text, args=(rows,))
    writer.start()
    data = tmp_path / "data"
    args = _import_command(data, pipe)
    try:
        assert args.run(args) == 0
    finally:
        if writer.is_alive():  # the command never opened the pipe: let the writer finish
            with pipe.open("rb") as handle:
                handle.read()
        writer.join()
    assert f"{pipe} (binance-csv): 40 rows -> 40 new, 0 already stored" in capsys.readouterr().out
    stored = asyncio.run(_stored(data))
    assert [e.ts for e in stored] == [1_766_845_883_281 + m * 60_000 for m in range(40)]
    assert not list(data.glob(importer.SPOOL_GLOB))  # the pipe's copy is removed


@pytest.mark.timeout(60)  # a regression reads the pipe twice: the second open waits for ever
async def test_a_bad_row_of_a_pipe_is_named_by_the_pipe(tmp_path: Path) -> None:
    pipe = tmp_path / "pipe"
    os.mkfifo(pipe)
    rows = _recorder_row(0) + _recorder_row(1).replace(",SELL,", ",HOLD,")
    writer = threading.Thread(target=pipe.write_text, args=(rows,))
    writer.start()
    try:
        [report] = await _import(tmp_path / "data", pipe)
    finally:
        writer.join()
    assert not report.imported
    assert str(report.bad[0]).startswith(f"{pipe}:2: ")
    # A copy an import killed outright left is removed by the next one (it holds the lock).
    left = tmp_path / "data" / ".import-dead.spool"
    left.write_text("x")
    await _import(tmp_path / "data", REAL / GOOD[0])
    assert not left.exists()


def test_a_folder_is_refused_as_one(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = _import_command(tmp_path / "data", tmp_path)
    assert args.run(args) == 2
    assert f"a folder, not a file: {tmp_path}" in capsys.readouterr().err


def test_an_export_piped_into_an_import_stores_the_same_events(tmp_path: Path) -> None:
    # `purpleflea export --out /dev/stdout | purpleflea import /dev/stdin`: the import refused
    # the pipe ("no such file"), and the export wrote its own report line into the pipe after
    # the CSV, a bad row that made the whole file refused.
    recording, source, copy = tmp_path / "rec.csv", tmp_path / "source", tmp_path / "copy"
    recording.write_text("".join(_recorder_row(m) for m in range(40)))
    asyncio.run(_import(source, recording))
    command = [sys.executable, "-m", "purpleflea.cli"]
    export = subprocess.Popen(
        [*command, "export", "--format", "csv", "--out", "/dev/stdout", "--data-dir", str(source)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert export.stdout is not None
    imported = subprocess.run(
        [*command, "import", "/dev/stdin", "--data-dir", str(copy), "--no-progress"],
        stdin=export.stdout,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    export.stdout.close()
    _, told = export.communicate(timeout=120)
    assert export.returncode == 0, told
    assert "exported 40 events to /dev/stdout (csv)" in told.decode()
    assert imported.returncode == 0, imported.stdout + imported.stderr
    assert "/dev/stdin (purpleflea-csv): 40 rows -> 40 new" in imported.stdout
    assert [e.to_dict() for e in asyncio.run(_stored(copy))] == [
        e.to_dict() for e in asyncio.run(_stored(source))
    ]
