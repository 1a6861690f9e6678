"""An import never appends an exchange and market's events behind newer ones: seq order is
time order for a stream's resume, history pages and backtests, and no event carries a mark
saying it came late, so a file that would break it is refused, naming the overlap."""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

import pytest

from purpleflea.backtest.runner import LATE_MS
from purpleflea.commands import importer
from purpleflea.commands.export import iter_events, write_csv
from purpleflea.model import Liquidation
from purpleflea.store.sqlite import SQLiteStore
from tests.events import T0, stored_event

HOUR = 3_600_000


def _file(path: Path, start_ms: int, count: int, **fields: object) -> Path:
    """Our CSV export of ``count`` events a minute apart from ``start_ms``."""
    events = [
        stored_event(n + 1, prefix=f"{path.stem}", ts=start_ms + n * 60_000, **fields)
        for n in range(count)
    ]

    async def pages():  # type: ignore[no-untyped-def]
        yield events

    asyncio.run(write_csv(pages(), path))
    return path


def _stored(data_dir: Path) -> list[Liquidation]:
    async def read() -> list[Liquidation]:
        store = SQLiteStore(data_dir / importer.DB_NAME, read_only=True)
        try:
            return [e async for page in iter_events(store) for e in page]
        finally:
            await store.close()

    return asyncio.run(read())


def _run(*argv: str) -> int:
    parser = argparse.ArgumentParser()
    importer.register(parser.add_subparsers())
    args = parser.parse_args(["import", *argv, "--no-progress"])
    return int(args.run(args))


BTC = {"exchange": "bybit", "market": "BTC-PERP"}


def test_an_older_file_of_a_stored_market_is_refused_naming_the_overlap(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "data"
    newer = _file(tmp_path / "newer.csv", T0 + 10 * HOUR, 30, **BTC)
    older = _file(tmp_path / "older.csv", T0, 20 * 60, **BTC)  # 20 h, the last 10 overlap
    assert _run(str(newer), "--data-dir", str(data)) == 0
    capsys.readouterr()
    assert _run(str(older), "--data-dir", str(data)) == 1
    out = capsys.readouterr().out
    # The file's minutes before the store's last event (10 h 29 min in), less the one allowed.
    late = (10 * 60 + 29) - 1
    assert f"{older}: NOT imported: {late:,} new event(s) are older than the store's" in out
    assert f"bybit BTC-PERP: {late:,} event(s) from 2023-11-14T22:14:00" in out
    assert "the store holds it up to 2023-11-15T08:43:00" in out
    stored = _stored(data)
    assert len(stored) == 30  # nothing of the refused file
    assert [e.ts for e in stored] == sorted(e.ts for e in stored)


def test_older_events_of_another_market_or_exchange_and_a_late_minute_are_imported(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    newer = _file(tmp_path / "newer.csv", T0 + 10 * HOUR, 30, **BTC)
    eth = _file(tmp_path / "eth.csv", T0, 30, exchange="bybit", market="ETH-PERP")
    okx = _file(tmp_path / "okx.csv", T0, 30, exchange="okx", market="BTC-PERP")
    # Within LATE_MS of the newest stored: what live feeds deliver, not a file going back.
    last = T0 + 10 * HOUR + 29 * 60_000
    tail = _file(tmp_path / "tail.csv", last - LATE_MS, 2, **BTC)

    async def run() -> list[importer.FileReport]:
        return await importer.import_files([newer, eth, okx, tail], data)

    reports = asyncio.run(run())
    assert [(r.imported, r.new, r.late) for r in reports] == [
        (True, 30, []),
        (True, 30, []),
        (True, 30, []),
        (True, 2, []),
    ]


def test_reimporting_a_stored_file_still_adds_nothing_rather_than_refusing(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    older = _file(tmp_path / "older.csv", T0, 30, **BTC)
    newer = _file(tmp_path / "newer.csv", T0 + 10 * HOUR, 30, **BTC)
    assert _run(str(older), str(newer), "--data-dir", str(data)) == 0
    assert _run(str(older), "--data-dir", str(data)) == 0  # all stored: nothing is late
