"""The cascade's real-data evaluation on other venues (bench/cascade_real.py --venues and
bench/cascade_real_venues.py): the loader's units and sides on a hand-made file, the side-blind
bound against the engine itself, and the command on the shared real data."""

from __future__ import annotations

import os
import random
import statistics
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "bench"))

import cascade_real  # noqa: E402
import cascade_real_venues as venues  # noqa: E402


def _write(path: Path, rows: list[tuple[int, str, str, str, float, float]]) -> Path:
    """A file in the source's schema: (ms, venue, coin, side, size_usd, price)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    stamps = [datetime.fromtimestamp(r[0] / 1000, UTC) for r in rows]
    table = pa.table(
        {
            "timestamp": pa.array(stamps, pa.timestamp("us", tz="UTC")),
            "venue": [r[1] for r in rows],
            "coin": [r[2] for r in rows],
            "side": [r[3] for r in rows],
            "size_usd": [r[4] for r in rows],
            "price": [r[5] for r in rows],
        }
    )
    pq.write_table(table, path)
    return path


def test_okx_sizes_are_contracts_times_ctval_at_the_bankruptcy_price(tmp_path: Path) -> None:
    # The source wrote size_usd = sz x bkPx with sz in contracts: 3 BTC-USDT-SWAP contracts
    # at 70,000 are 0.03 BTC ($2,100), not $210,000.
    path = _write(
        tmp_path / "liquidations.parquet",
        [
            (1_772_700_002_000, "okx", "BTC", "sell", 3 * 70_000.0, 70_000.0),
            (1_772_700_001_000, "okx", "DOGE", "buy", 5 * 0.1, 0.1),
            (1_772_700_003_000, "okx", "HYPE", "buy", 10 * 30.0, 30.0),
            (1_772_700_004_000, "okx", "ETH", "sell", 2 * 2_000.0, 2_000.0),
            (1_772_700_005_000, "okx", "SOL", "buy", 4 * 90.0, 90.0),
            (1_748_183_818_596, "hyperliquid", "BTC", "S", 2_564.1, 107_000.0),
        ],
    )
    okx = venues.load(path, "okx")
    assert [r.ts for r in okx] == sorted(r.ts for r in okx)  # in time order
    got = {r.market: (r.side, round(r.size_usd, 6), r.price) for r in okx}
    assert got == {
        "BTC-PERP": ("long", 2_100.0, 70_000.0),  # a sell order closes a long
        "DOGE-PERP": ("short", 500.0, 0.1),  # 5 x 1000 DOGE
        "HYPE-PERP": ("short", 30.0, 30.0),  # 10 x 0.1 HYPE
        "ETH-PERP": ("long", 400.0, 2_000.0),  # 2 x 0.1 ETH
        "SOL-PERP": ("short", 360.0, 90.0),  # 4 x 1 SOL
    }
    # Hyperliquid: USD already (price x size); the side is not known.
    assert venues.load(path, "hyperliquid") == [
        venues.Liq("BTC-PERP", venues.UNKNOWN, 2_564.1, 107_000.0, 1_748_183_818_596)
    ]
    with pytest.raises(ValueError, match="venue"):
        venues.load(path, "binance")


def test_heavy_minutes_pooled_and_calm_time() -> None:
    minute = 29_000_000 * 60_000
    rows = [
        venues.Liq("X-PERP", "long", 20_000.0, 1.0, minute + 1_000),
        venues.Liq("X-PERP", "short", 15_000.0, 1.0, minute + 2_000),
        venues.Liq("X-PERP", "long", 1_000.0, 1.0, minute + 3_000),
        venues.Liq("Y-PERP", "long", 90_000.0, 1.0, minute + 1_000),  # one event: not heavy
    ]
    # Neither side alone reaches $30k, both together do: the pooled minute is a superset.
    assert venues.heavy_pooled(rows, 30_000.0, 3) == {"X-PERP": [minute // 60_000], "Y-PERP": []}
    assert venues.calm_spans((0, 100), [(10, 20), (15, 30), (90, 200)]) == [(0, 10), (30, 90)]
    assert venues.calm_spans((0, 100), [(-5, 200)]) == []
    assert venues.overlapping([(5, 8), (12, 14), (30, 30)], [(0, 10), (30, 90)]) == 2


def test_no_alert_starts_outside_the_side_blind_spans() -> None:
    """Whatever side each liquidation had, the engine starts alerts only where the pooled
    90 s window reaches min_alert_usd: the bound the Hyperliquid rows are measured by."""
    rng = random.Random(7)
    t0 = 1_748_000_000_000
    rows: list[cascade_real.Row] = []
    price = 100.0
    for i in range(60):  # an hour of background, either side
        side = rng.choice(("long", "short"))
        rows.append(cascade_real.Row("X-PERP", side, rng.uniform(200, 900), price, t0 + i * 60_000))
    t = t0 + 3_600_000
    for k in range(40):  # then a wave of longs walking the price down, a few shorts between:
        # ~$3k every 6-9 s, so only a full 90 s window reaches the $25k floor
        price *= 0.998
        side = "short" if k % 7 == 3 else "long"
        rows.append(cascade_real.Row("X-PERP", side, rng.uniform(2_600, 3_400), price, t))
        t += rng.randint(6_000, 9_000)
    t += 600_000
    for k in range(30):  # later: $24k in 90 s, pooled, under the floor
        rows.append(cascade_real.Row("X-PERP", rng.choice(("long", "short")), 800.0, price, t))
        t += 3_000 + k
    _, alerts = cascade_real.score(rows)
    started = [a for a in alerts if a.status == "started"]
    assert started, "the wave should alert, or the bound is tested on nothing"
    spans = venues.alert_possible(rows, cascade_real.CascadeConfig().min_alert_usd)["X-PERP"]
    assert len(spans) == 1
    for a in started:
        assert any(lo <= a.updated_at <= hi for lo, hi in spans), (a.updated_at, spans)


def _real_file() -> Path:
    configured = os.environ.get("PURPLEFLEA_SHARED")
    shared = Path(configured) if configured else REPO.parent / "shared"
    path = shared / "data" / "real" / venues.KNX_LIQUIDATIONS
    if not path.exists():
        pytest.skip(f"REAL DATA MISSING: {path} (shared/data/real, SOURCES.md 5b)")
    return path


def test_real_okx_orders_are_hundreds_of_dollars_per_coin() -> None:
    path = _real_file()
    okx = venues.load(path, "okx")
    assert len(okx) == 5_816
    assert len(venues.load(path, "hyperliquid")) == 2_243
    # Read as the file wrote it (sz x bkPx), BTC's median order was $81.6k and DOGE's $0.46;
    # with ctVal each coin's median order is a few hundred dollars.
    medians = {
        market: statistics.median(r.size_usd for r in okx if r.market == market)
        for market in {r.market for r in okx}
    }
    assert set(medians) == {"BTC-PERP", "ETH-PERP", "SOL-PERP", "DOGE-PERP", "HYPE-PERP"}
    assert all(300 <= usd <= 1_000 for usd in medians.values()), medians


def _venues(*flags: str) -> str:
    """What ``bench/cascade_real.py --venues`` prints (with ``flags``)."""
    _real_file()
    done = subprocess.run(
        [sys.executable, str(REPO / "bench" / "cascade_real.py"), "--venues", *flags],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return done.stdout


def test_the_venues_command_runs_in_seconds_and_reports_both_venues() -> None:
    out = _venues()
    assert "heavy minute: >= $30,468 in >= 3 events" in out
    assert "  OKX: 3.76 market-days, 84 waves" in out
    assert "  Hyperliquid: 22.29 market-days" in out


def test_the_venues_command_reports_relative_waves_beside_the_pooled_bar() -> None:
    out = _venues("--wave=relative")
    assert "heavy minute (relative): >= $30,468" in out
    # The figures of the one run after the rule was registered (docs/cascade.md).
    assert "  OKX: 3.76 market-days, 61 waves, 3 with a started alert within 60 s" in out
    assert (
        "  OKX: 61 waves (BTC-PERP 22, DOGE-PERP 12, ETH-PERP 13, HYPE-PERP 1, SOL-PERP 13)" in out
    )
    assert "calm time: 3.27 market-days, 3 alerts in it" in out
