"""Every figure the API gives on the real Binance recordings equals one computed from the raw
files here, with the csv module alone: per-minute, hour and day buckets (UTC) by market, side
and exchange, windows whose edges are not on the hour (nor the minute), history pages, the
largest events, first and last times. The files are imported as a user would, served, and read
through the SDK."""

from __future__ import annotations

import csv
import random
import re
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

from purpleflea.client import LiquidationClient
from purpleflea.commands import importer
from tests.conftest import shared_dir
from tests.server.conftest import make_config, running_server

REAL = shared_dir() / "data" / "real"
#: Oldest first; NeoParth's average_price is 'None' on every row: priced at the order's price.
FILES = [
    "BandsThoBaby_Data_Streams_Project/binance.csv",
    "BandsThoBaby_Data_Streams_Project/binance_bigliqs.csv",
    "NeoParth_strategies/binance.csv",
    "riftfern_data-streams/binance.csv",
]
WIDTH = {"1m": 60_000, "1h": 3_600_000, "1d": 86_400_000}


def _market(column: str) -> str:
    """The market a recorder symbol names, read off the column by hand: quote and unit bundle
    dropped, a dated contract (``ETH_250627``) as ``ETH-20250627``."""
    pair, _, expiry = column.partition("_")
    base = re.sub(r"(USDT|USDC)$", "", pair)
    base = re.sub(r"^(1000000|1000)(?=[A-Z])", "", base)
    return f"{base}-20{expiry}" if expiry else f"{base}-PERP"


def _truth() -> list[dict[str, Any]]:
    rows = []
    for name in FILES:
        with (REAL / name).open() as handle:
            for row in csv.reader(handle):
                price = float(row[5] if row[6] == "None" else row[6])  # ap, else the order's p
                rows.append(
                    {
                        "market": _market(row[0]),
                        "side": "long" if row[1] == "SELL" else "short",  # the order side
                        "usd": float(row[9]) * price,  # z x ap: the usd_size column uses p
                        "ts": int(row[10]),
                    }
                )
    return rows


def _buckets(rows: list[dict[str, Any]], interval: str, group: str, start: int, end: int) -> dict:
    width = WIDTH[interval]
    out: dict[tuple[int, str], list[float]] = defaultdict(lambda: [0, 0.0, 0.0, 0.0])
    for row in rows:
        if start <= row["ts"] < end:
            key = "binance_usdm" if group == "exchange" else row[group]
            cell = out[(row["ts"] // width * width, key)]
            cell[0] += 1
            cell[1] += row["usd"]
            cell[2 if row["side"] == "long" else 3] += row["usd"]
    return out


async def test_the_served_figures_of_the_real_recordings_are_the_raw_files(
    tmp_path: Path,
) -> None:
    reports = await importer.import_files(
        [REAL / n for n in FILES], tmp_path, price_fallback="order"
    )
    assert all(r.imported for r in reports)
    rows = _truth()
    first, last = min(r["ts"] for r in rows), max(r["ts"] for r in rows)
    day = WIDTH["1d"]
    windows = [(first // day * day, (last // day + 1) * day)]
    shuffle = random.Random(20261207)
    times = sorted(r["ts"] for r in rows)
    for _ in range(6):  # edges off the hour and off the minute, inside and between sessions
        a, b = sorted(shuffle.sample(times, 2))
        windows.append((a - shuffle.randint(0, 59_999), b + shuffle.randint(1, 59_999)))
        windows.append((a // 60_000 * 60_000, (b // 60_000 + 1) * 60_000))

    config = make_config(tmp_path, rate_per_s=10_000.0, rate_burst=10_000.0)
    async with running_server(config) as live, LiquidationClient(live.key, live.url) as client:
        for start, end in windows:
            for interval in ("1h", "1d"):
                for group in ("market", "side", "exchange"):
                    got = await client.aggregate(
                        interval=interval, group_by=group, start=start, end=end
                    )
                    want = _buckets(rows, interval, group, start, end)
                    assert {(b.start_ms, b.group) for b in got} == set(want), (interval, group)
                    for b in got:
                        count, usd, longs, shorts = want[(b.start_ms, b.group)]
                        assert b.count == count
                        assert b.size_usd == pytest.approx(usd, rel=1e-12)
                        assert b.long_usd == pytest.approx(longs, rel=1e-12, abs=1e-9)
                        assert b.short_usd == pytest.approx(shorts, rel=1e-12, abs=1e-9)
        # Minutes, a week at most per request: each recording's own week.
        for start in sorted({r["ts"] // (7 * day) * (7 * day) for r in rows}):
            got = await client.aggregate(
                interval="1m", group_by="side", start=start, end=start + 7 * day
            )
            want = _buckets(rows, "1m", "side", start, start + 7 * day)
            assert {(b.start_ms, b.group) for b in got} == set(want)
            for b in got:
                count, usd, _, _ = want[(b.start_ms, b.group)]
                assert (b.count, b.size_usd) == (count, pytest.approx(usd, rel=1e-12))

        events = [e async for e in client.history_all(start=0, limit=1000)]
    assert len(events) == len(rows) == 3_586
    assert sum(e.size_usd for e in events) == pytest.approx(sum(r["usd"] for r in rows))
    assert (min(e.ts for e in events), max(e.ts for e in events)) == (first, last)
    assert {e.market for e in events} == {r["market"] for r in rows}
    largest = sorted(events, key=lambda e: -e.size_usd)[:5]
    expected = sorted(rows, key=lambda r: -r["usd"])[:5]
    assert [(e.market, e.side, e.ts) for e in largest] == [
        (r["market"], r["side"], r["ts"]) for r in expected
    ]
    assert {e.coverage for e in events} == {"snapshot"}
