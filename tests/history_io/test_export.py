"""Export to CSV/Parquet and back: identical events; filters; paging; beside a running server;
from PostgreSQL; data frames."""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import msgspec
import psycopg
import pytest

from purpleflea import frames
from purpleflea.clock import utc_iso
from purpleflea.commands import export, importer
from purpleflea.commands.export import iter_events
from purpleflea.history_io import parse_purpleflea_csv
from purpleflea.model import Liquidation
from purpleflea.store.factory import open_store
from purpleflea.store.lock import exclusive
from purpleflea.store.sqlite import SQLiteStore
from tests.conftest import shared_dir
from tests.events import stored_event
from tests.services import ensure_postgres

REAL = shared_dir() / "data" / "real"
RECORDINGS = [  # in time order (2024-08, 2025-06, 2025-12): an older file after is refused
    REAL / "BandsThoBaby_Data_Streams_Project/binance.csv",
    REAL / "NeoParth_strategies/binance.csv",
    REAL / "riftfern_data-streams/binance.csv",
]


def _cli(*argv: str) -> int:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers()
    export.register(sub)
    importer.register(sub)
    args = parser.parse_args(argv)
    result: int = args.run(args)
    return result


async def _pages(store_path: Path, **filters: object) -> list[list[Liquidation]]:
    store = SQLiteStore(store_path, read_only=True)
    try:
        return [page async for page in iter_events(store, **filters)]  # type: ignore[arg-type]
    finally:
        await store.close()


def _stored(data_dir: Path, **filters: object) -> list[Liquidation]:
    pages = asyncio.run(_pages(data_dir / "purpleflea.sqlite", **filters))
    return [e for page in pages for e in page]


def _without_seq(events: list[Liquidation]) -> list[Liquidation]:
    return [msgspec.structs.replace(e, seq=0) for e in events]


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data = tmp_path_factory.mktemp("source")
    common = ["--data-dir", str(data), "--no-progress", "--price-fallback", "order"]
    assert _cli("import", *map(str, RECORDINGS), *common) == 0
    return data


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_export_then_import_gives_identical_events(source: Path, tmp_path: Path, fmt: str) -> None:
    out = tmp_path / f"all.{fmt}"
    assert _cli("export", "--format", fmt, "--out", str(out), "--data-dir", str(source)) == 0
    fresh = tmp_path / "fresh"
    assert _cli("import", str(out), "--data-dir", str(fresh), "--no-progress") == 0
    original, copy = _stored(source), _stored(fresh)
    assert len(original) == 456 + 2_045 + 700
    # Every field but seq (a fresh store numbers from 1), and the order, are preserved.
    assert _without_seq(copy) == _without_seq(original)
    assert [e.seq for e in copy] == list(range(1, len(copy) + 1))
    # Importing the export into the store it came from adds nothing.
    assert _cli("import", str(out), "--data-dir", str(source), "--no-progress") == 0
    assert len(_stored(source)) == len(original)


def test_export_filters_by_market_and_time(source: Path, tmp_path: Path) -> None:
    everything = _stored(source)
    pepe = [e for e in everything if e.market == "PEPE-PERP"]
    start, end = pepe[1].ts, pepe[-1].ts
    out = tmp_path / "pepe.csv"
    argv = ["--market", "pepe-perp", "--start", str(start), "--end", str(end)]
    assert (
        _cli("export", "--format", "csv", "--out", str(out), "--data-dir", str(source), *argv) == 0
    )
    lines = out.read_text().splitlines()
    assert lines[0] == ",".join(Liquidation.__struct_fields__)
    expected = [e for e in pepe if start <= e.ts < end]
    assert [line.split(",")[0] for line in lines[1:]] == [e.id for e in expected]
    assert len(expected) >= 1


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_export_creates_the_output_folder(source: Path, tmp_path: Path, fmt: str) -> None:
    out = tmp_path / "exports" / "2025" / f"all.{fmt}"
    assert _cli("export", "--format", fmt, "--out", str(out), "--data-dir", str(source)) == 0
    assert out.stat().st_size > 0


def test_export_through_a_symlink_writes_the_file_it_names(source: Path, tmp_path: Path) -> None:
    # `--out latest.csv`, a link to the dated file: the export is written into that file, as
    # before exports were written to a partial file and renamed (the rename replaced the link
    # with a file of its own, and the dated file kept the previous export).
    dated = tmp_path / "exports" / "2025-12.csv"
    dated.parent.mkdir()
    dated.write_text("the previous export\n")
    latest = tmp_path / "latest.csv"
    latest.symlink_to(dated)
    assert _cli("export", "--format", "csv", "--out", str(latest), "--data-dir", str(source)) == 0
    assert latest.is_symlink()
    assert dated.read_text().startswith("id,seq,")
    assert not list(tmp_path.rglob("*.partial"))


def test_export_over_a_private_file_keeps_it_private(source: Path, tmp_path: Path) -> None:
    # An export written again over a file its owner made private (chmod 600): the partial
    # file renamed over it came with the umask's mode, 644, readable by every local user.
    out = tmp_path / "mine.csv"
    out.write_text("the previous export\n")
    out.chmod(0o600)
    modes = []
    real_write = export.write_csv

    async def write_csv(pages: Any, path: Path) -> int:
        written = await real_write(pages, path)
        modes.append(path.stat().st_mode & 0o777)  # the partial file, while written
        return written

    with pytest.MonkeyPatch.context() as patched:
        patched.setattr(export, "write_csv", write_csv)
        assert _cli("export", "--format", "csv", "--out", str(out), "--data-dir", str(source)) == 0
    assert out.read_text().startswith("id,seq,")
    assert (out.stat().st_mode & 0o777, modes) == (0o600, [0o600])


def test_export_into_a_path_under_a_file_is_a_clear_error(
    source: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "taken").write_text("a file, not a folder")
    out = tmp_path / "taken" / "all.csv"
    assert _cli("export", "--format", "csv", "--out", str(out), "--data-dir", str(source)) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1
    assert err[0].startswith("purpleflea export: ")
    assert str(tmp_path / "taken") in err[0]


def test_an_out_that_cannot_be_written_is_named_as_given_not_as_the_hidden_partial(
    source: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # `--out /proc/x.csv` said "[Errno 2] No such file or directory:
    # '/proc/.x.csv.30351-90ab01e0.partial'", a file the user never named; `--out folder`
    # said "[Errno 21] Is a directory: 'folder'".
    folder = tmp_path / "reports"
    folder.mkdir()
    for out, said in [
        (Path("/proc/purpleflea-export.csv"), "cannot write a file there"),
        (folder, "a folder: name the file to write (e.g. "),
    ]:
        argv = ["--format", "csv", "--out", str(out), "--data-dir", str(source)]
        assert _cli("export", *argv, "--no-progress") == 2
        err = capsys.readouterr().err.splitlines()
        assert len(err) == 1, err
        assert err[0].startswith(f"purpleflea export: --out {out}: {said}"), err
        assert ".partial" not in err[0]
    assert list(folder.iterdir()) == []


def test_export_of_a_name_that_is_no_market_is_a_clear_error(
    source: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # An exchange symbol matched nothing: "exported 0 events" and an empty file, exit 0.
    out = tmp_path / "btc.csv"
    argv = ["--format", "csv", "--out", str(out), "--data-dir", str(source)]
    assert _cli("export", *argv, "--market", "PEPE-PERP", "--market", "BTCUSDT") == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1
    assert err[0].startswith("purpleflea export: --market: market 'BTCUSDT' is not a market name")
    assert not out.exists()


def test_export_shows_its_progress_on_stderr_unless_told_not_to(
    source: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A long export (millions of rows: minutes) said nothing until it ended; import, sim and
    # backtest draw a progress bar (SPEC: "progress bars on long work").
    argv = ["--format", "csv", "--data-dir", str(source)]
    assert _cli("export", *argv, "--out", str(tmp_path / "a.csv")) == 0
    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    assert lines, "no progress shown"
    assert all(line.startswith("export: ") for line in lines)
    assert "100.0%" in lines[-1]
    assert captured.out.startswith("exported ")
    assert _cli("export", *argv, "--out", str(tmp_path / "b.csv"), "--no-progress") == 0
    assert capsys.readouterr().err == ""
    # An --end before the store's last event stops reading early: the bar ended at "24.1%",
    # as if the export had broken off, above "exported 4,273 events".
    end = str(_stored(source)[100].ts)
    assert _cli("export", *argv, "--end", end, "--out", str(tmp_path / "c.csv")) == 0
    assert "100.0%" in capsys.readouterr().err.splitlines()[-1]


def test_export_streams_in_pages(source: Path) -> None:
    pages = asyncio.run(_pages(source / "purpleflea.sqlite", page=500))
    assert [len(p) for p in pages[:-1]] == [500] * (len(pages) - 1)
    assert [e.seq for p in pages for e in p] == [e.seq for e in _stored(source)]


def test_export_without_a_store_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "x.csv"
    assert _cli("export", "--format", "csv", "--out", str(out), "--data-dir", str(tmp_path)) == 2
    assert "no history store at" in capsys.readouterr().err
    assert not out.exists()


def test_frames_name_the_missing_library(source: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    events = _stored(source)[:3]
    assert frames.columns(events)["id"] == [e.id for e in events]
    assert frames.columns([e.to_dict() for e in events]) == frames.columns(events)
    for name, convert in (("pandas", frames.to_pandas), ("polars", frames.to_polars)):
        monkeypatch.setitem(sys.modules, name, None)  # as if not installed
        with pytest.raises(
            ImportError, match=f"needs {name}, which is not installed: pip install {name}"
        ):
            convert(events)


def test_filtered_export_streams_in_pages_oldest_first(source: Path) -> None:
    everything = _stored(source)
    pepe = [e for e in everything if e.market == "PEPE-PERP"]
    start, end = pepe[1].ts, pepe[-1].ts
    expected = [e for e in pepe if start <= e.ts < end]
    assert len(expected) > 2 * 3  # several pages, the oldest one partial
    filters = {"markets": ("PEPE-PERP",), "start": start, "end": end, "page": 3}
    pages = asyncio.run(_pages(source / "purpleflea.sqlite", **filters))
    assert all(1 <= len(p) <= 3 for p in pages)
    assert [e for p in pages for e in p] == expected


def test_export_runs_beside_a_server_holding_the_writer_lock(source: Path, tmp_path: Path) -> None:
    db = source / "purpleflea.sqlite"
    before = db.stat().st_mtime_ns, db.stat().st_size
    out = tmp_path / "all.csv"
    with exclusive(source, "purpleflea serve"):
        assert _cli("export", "--format", "csv", "--out", str(out), "--data-dir", str(source)) == 0
    assert len(out.read_text().splitlines()) == 1 + len(_stored(source))
    assert (db.stat().st_mtime_ns, db.stat().st_size) == before  # read-only: nothing written


@pytest.mark.parametrize("filtered", [False, True])
async def test_events_stored_during_an_export_wait_for_the_next_one(
    tmp_path: Path, filtered: bool
) -> None:
    path = tmp_path / "purpleflea.sqlite"
    writer = SQLiteStore(path)
    reader = SQLiteStore(path, read_only=True)
    try:
        writer.append_now([stored_event(seq) for seq in range(1, 31)])
        markets = ("BTC-PERP",) if filtered else ()
        pages = iter_events(reader, markets=markets, page=4)
        first = await anext(pages)
        # A server keeps appending, BTC-PERP included, while the export is between pages.
        writer.append_now([stored_event(seq) for seq in range(31, 61)])
        exported = first + [e async for page in pages for e in page]
    finally:
        await reader.close()
        await writer.close()
    expected = [stored_event(seq) for seq in range(1, 31)]
    assert exported == [e for e in expected if not filtered or e.market == "BTC-PERP"]


async def test_a_read_only_store_neither_creates_nor_writes(tmp_path: Path) -> None:
    missing = tmp_path / "nothing" / "purpleflea.sqlite"
    with pytest.raises(FileNotFoundError, match=f"no history store at {missing}"):
        SQLiteStore(missing, read_only=True)
    assert not missing.parent.exists()
    path = tmp_path / "purpleflea.sqlite"
    await SQLiteStore(path).close()
    store = SQLiteStore(path, read_only=True)
    try:
        with pytest.raises(PermissionError, match="opened read-only: cannot append"):
            await store.append([stored_event(1)])
        assert await store.since(0) == []
    finally:
        await store.close()


async def _postgres_with(events: list[Liquidation]) -> str:
    """The session's PostgreSQL database holding exactly ``events``."""
    dsn = ensure_postgres()
    connection = await psycopg.AsyncConnection.connect(dsn, autocommit=True)
    async with connection:
        await connection.execute(
            "DROP TABLE IF EXISTS liquidations, rollup_1m, cascades, open_interest"
        )
    store = await open_store(dsn)
    try:
        assert await store.append(events) == events
    finally:
        await store.close()
    return dsn


def _csv_events(out: Path) -> list[Liquidation]:
    with out.open(newline="") as handle:
        parsed = parse_purpleflea_csv(handle, source=str(out))
    assert parsed.bad == []
    return parsed.events


def test_export_from_postgres_round_trips_through_csv(tmp_path: Path) -> None:
    # Floats that only survive a text file written with every bit (0.1 * 3, tiny prices).
    events = [
        stored_event(seq, price=50_000.0 + seq / 3, quantity=0.1 * seq, size_usd=seq / 7)
        for seq in range(1, 41)
    ]
    dsn = asyncio.run(_postgres_with(events))
    out = tmp_path / "all.csv"
    assert _cli("export", "--format", "csv", "--out", str(out), "--store", dsn) == 0
    assert _csv_events(out) == events  # seq included: the rows are the stored events
    start, end = events[5].ts, events[30].ts
    argv = ["--market", "eth-perp", "--start", str(start), "--end", str(end)]
    assert _cli("export", "--format", "csv", "--out", str(out), "--store", dsn, *argv) == 0
    assert _csv_events(out) == [e for e in events if e.market == "ETH-PERP" and start <= e.ts < end]


async def test_postgres_export_pages_oldest_first(tmp_path: Path) -> None:
    events = [stored_event(seq) for seq in range(1, 41)]
    store = await open_store(await _postgres_with(events), read_only=True)
    try:
        pages = [p async for p in iter_events(store, markets=("BTC-PERP",), page=4)]
    finally:
        await store.close()
    assert all(1 <= len(p) <= 4 for p in pages)
    assert [e for p in pages for e in p] == [e for e in events if e.market == "BTC-PERP"]


def test_an_export_from_before_coverage_imports_with_each_exchanges_coverage() -> None:
    header = (
        "id,seq,exchange,symbol,market,side,price,quantity,size_usd,ts,received_at,cascade_score"
    )
    rows = [
        header,
        "a,1,binance_usdm,BTCUSDT,BTC-PERP,long,50000.0,0.1,5000.0,1700000000000,1700000000005,0",
        "b,2,bybit,BTCUSDT,BTC-PERP,short,50000.0,0.2,10000.0,1700000001000,1700000001005,3",
        "c,3,nowhere,BTCUSDT,BTC-PERP,short,50000.0,0.2,10000.0,1700000001000,1700000001005,3",
    ]
    parsed = parse_purpleflea_csv(rows, source="old.csv")
    assert [(e.exchange, e.coverage) for e in parsed.events] == [
        ("binance_usdm", "snapshot"),
        ("bybit", "complete"),
    ]
    assert len(parsed.bad) == 1
    assert "no coverage column and unknown exchange 'nowhere'" in parsed.bad[0].reason


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_names_stored_before_the_names_check_are_not_exported(
    tmp_path: Path, fmt: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # A store written before ingest and import checked names may hold a market of terminal
    # escapes or a symbol that is a spreadsheet formula: export wrote them into the file as
    # they were (=HYPERLINK ran when the CSV was opened).
    data = tmp_path / "data"
    data.mkdir()
    hostile = [
        stored_event(2, market="BTC\x1b]0;owned\x07\x1b[2J-PERP"),
        stored_event(3, symbol='=HYPERLINK("https://evil.example","BTCUSDT")'),
        stored_event(4, symbol="BTC\u202eUSDT"),
    ]
    good = [stored_event(1), stored_event(5)]

    async def fill() -> None:
        store = SQLiteStore(data / "purpleflea.sqlite")
        try:
            await store.append([good[0], *hostile, good[1]])
        finally:
            await store.close()

    asyncio.run(fill())
    out = tmp_path / f"all.{fmt}"
    argv = ["--format", fmt, "--out", str(out), "--data-dir", str(data), "--no-progress"]
    assert _cli("export", *argv) == 0
    captured = capsys.readouterr()
    assert captured.out == f"exported 2 events to {out} ({fmt})\n"
    [line] = captured.err.splitlines()
    assert line.isprintable()
    assert line.startswith(
        "purpleflea export: 3 events not exported: their names are refused since ingest and "
        "import check them (stored before that), first seq 2: market 'BTC\\x1b]0;owned"
    )
    if fmt == "csv":
        text = out.read_text(encoding="utf-8")
        for raw in ("\x1b", "HYPERLINK", "\u202e"):
            assert raw not in text
    back = tmp_path / "back"
    assert _cli("import", str(out), "--data-dir", str(back), "--no-progress") == 0
    assert [e.id for e in _stored(back)] == [e.id for e in good]


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_two_exports_to_the_same_out_at_once_each_write_a_whole_file(
    source: Path, tmp_path: Path, fmt: str
) -> None:
    # Both wrote the one hidden `.all.csv.partial`: each opened it, truncating what the other
    # had written, their rows interleaved in it, and the second rename found no file. Each
    # now writes a partial file of its own; the file at --out is one of the two, whole.
    events = _stored(source)
    halves = {"first": events[: len(events) // 2], "second": events[len(events) // 2 :]}
    out = tmp_path / f"all.{fmt}"
    write = export.write_csv if fmt == "csv" else export.write_parquet

    async def pages(half: list[Liquidation]) -> Any:
        for start in range(0, len(half), 100):
            yield half[start : start + 100]
            await asyncio.sleep(0.001)  # the other export writes meanwhile

    async def both() -> list[int]:
        return await asyncio.gather(
            *(export._written_whole(write, pages(half), out) for half in halves.values())
        )

    written = asyncio.run(both())
    assert written == [len(half) for half in halves.values()]
    fresh = tmp_path / "fresh"
    assert _cli("import", str(out), "--data-dir", str(fresh), "--no-progress") == 0
    assert _without_seq(_stored(fresh)) in [_without_seq(half) for half in halves.values()]
    assert [p.name for p in tmp_path.iterdir() if p.is_file()] == [out.name]


async def test_an_export_that_fails_removes_only_its_own_partial_file(tmp_path: Path) -> None:
    out = tmp_path / "all.csv"

    async def failing() -> Any:
        yield []
        raise OSError("the store went away")

    with pytest.raises(OSError, match="went away"):
        await export._written_whole(export.write_csv, failing(), out)
    assert list(tmp_path.iterdir()) == []


def test_an_export_removes_the_partial_files_of_exports_killed_outright(
    source: Path, tmp_path: Path
) -> None:
    # A SIGKILL runs no exit path: its partial file, named after its process, is left. The
    # next export to that --out removes those of processes gone, not a live export's.
    out = tmp_path / "all.csv"
    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        check=True,
        capture_output=True,
        text=True,
    )
    dead = tmp_path / f".all.csv.{gone.stdout.strip()}-0a1b2c3d.partial"
    live = tmp_path / f".all.csv.{os.getppid()}-0a1b2c3d.partial"
    other = tmp_path / ".other.csv.1-0a1b2c3d.partial"
    for path in (dead, live, other):
        path.write_text("id,seq,")
    assert _cli("export", "--format", "csv", "--out", str(out), "--data-dir", str(source)) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([out.name, live.name, other.name])


def test_an_export_of_an_empty_window_says_when_the_stored_events_are(
    source: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # `--start 2030-01-01` said "exported 0 events", as if the store were empty.
    everything = _stored(source)
    first, last = min(e.ts for e in everything), max(e.ts for e in everything)
    out = tmp_path / "later.csv"
    argv = ["--format", "csv", "--out", str(out), "--data-dir", str(source), "--no-progress"]
    assert _cli("export", *argv, "--start", "2030-01-01") == 0
    said = capsys.readouterr().out
    assert said.startswith(f"exported 0 events to {out} (csv): ")
    assert f"the store's events run from {utc_iso(first)} to {utc_iso(last)}" in said, said
    assert _cli("export", *argv, "--market", "PEPE-PERP") == 0  # no window: nothing to say
    assert "the store's events run from" not in capsys.readouterr().out


def test_an_export_to_a_closed_pipe_stops_quietly(source: Path) -> None:
    # `purpleflea export --out /dev/stdout | head -2` said "purpleflea export: [Errno 32]
    # Broken pipe" and exit 2; `history | head` stops as `cat file | head` does.
    read, write = os.pipe()
    os.close(read)  # every write to stdout is EPIPE
    try:
        done = subprocess.run(
            [
                *(sys.executable, "-m", "purpleflea.cli", "export", "--format", "csv"),
                *("--out", "/dev/stdout", "--data-dir", str(source), "--no-progress"),
            ],
            stdout=write,
            stderr=subprocess.PIPE,
            timeout=120,
            check=False,
        )
    finally:
        os.close(write)
    assert (done.returncode, done.stderr.decode()) == (141, "")
