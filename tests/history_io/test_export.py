"""Export to CSV/Parquet and back: identical events; filters; paging; data frames."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import msgspec
import pytest

from purpleflea import frames
from purpleflea.commands import export, importer
from purpleflea.commands.export import iter_events
from purpleflea.model import Liquidation
from tests.conftest import shared_dir

REAL = shared_dir() / "data" / "real"
RECORDINGS = [
    REAL / "BandsThoBaby_Data_Streams_Project/binance.csv",
    REAL / "riftfern_data-streams/binance.csv",
    REAL / "NeoParth_strategies/binance.csv",
]


def _cli(*argv: str) -> int:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers()
    export.register(sub)
    importer.register(sub)
    args = parser.parse_args(argv)
    result: int = args.run(args)
    return result


def _stored(data_dir: Path, **filters: object) -> list[Liquidation]:
    return [
        e
        for page in iter_events(data_dir / "purpleflea.sqlite", **filters)
        for e in page  # type: ignore[arg-type]
    ]


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


def test_export_streams_in_pages(source: Path) -> None:
    pages = list(iter_events(source / "purpleflea.sqlite", page=500))
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
