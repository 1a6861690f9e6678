"""The heatmap's real-data evaluation (bench/heatmap_real.py and its modules): the scoring
helpers on hand-made cases, and the script's one-line verdict on the shared real data."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from purpleflea.model import Heatmap

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "bench"))

import heatmap_decile  # noqa: E402
import heatmap_measured  # noqa: E402


def _heat(long_usd: list[float], short_usd: list[float]) -> Heatmap:
    count = len(long_usd)
    return Heatmap(
        market="BTC-PERP",
        ts=0,
        mark_price=100.0 + count / 2,
        bucket_size=1.0,
        prices=tuple(100.0 + i for i in range(count)),
        long_usd=tuple(long_usd),
        short_usd=tuple(short_usd),
        clusters=(),
    )


def test_wilson_interval_matches_the_textbook_values() -> None:
    low, high = heatmap_decile.wilson(5, 10)
    assert (round(low, 4), round(high, 4)) == (0.2366, 0.7634)
    low, high = heatmap_decile.wilson(0, 10)
    assert low == 0.0
    assert round(high, 4) == 0.2775


def test_top_decile_is_the_tenth_of_buckets_with_most_notional_and_a_hit_lands_in_one() -> None:
    longs = [0.0] * 20
    longs[3], longs[7], longs[12] = 5.0, 9.0, 1.0
    heat = _heat(longs, [0.0] * 20)
    # Two zones (a tenth of 20 buckets): the two largest.
    assert sorted(heatmap_decile.top_decile(heat, "long").tolist()) == [3, 7]
    assert heatmap_decile.hits(heat, "long", 107.5)
    assert not heatmap_decile.hits(heat, "long", 112.5)  # holds notional, but not top decile
    assert not heatmap_decile.hits(heat, "long", 99.0)  # outside the view: a miss
    # An empty side has no zones at all.
    assert heatmap_decile.top_decile(heat, "short").size == 0


def test_zone_hits_need_the_first_reaching_period_to_be_heavy() -> None:
    lows = np.array([90.0, 95.0, 80.0])
    future_low = np.array([99.0, 94.0, 89.0])
    future_high = np.full(3, 101.0)
    heavy = np.array([False, True, False])
    got = heatmap_decile.zone_hits(lows, 1.0, "long", future_low, future_high, heavy)
    # 95-96 is first reached in period 1 (heavy); 90-91 in period 2 (not); 80-81 never.
    assert got.tolist() == [False, True, False]


def test_spearman_scores_a_flat_estimate_zero_and_emd_measures_shift() -> None:
    truth = np.array([0.0, 0.0, 3.0, 1.0])
    assert heatmap_measured.spearman(np.ones(4), truth) == 0.0
    assert heatmap_measured.spearman(np.array([0.0, 0.1, 9.0, 2.0]), truth) > 0.9
    one_bucket = (heatmap_measured.HIGH - heatmap_measured.LOW) / heatmap_measured.BUCKETS * 100
    shifted = np.array([0.0, 3.0, 1.0, 0.0])
    assert heatmap_measured.emd_pct(shifted, truth) == pytest.approx(one_bucket)


def _real_data() -> Path:
    configured = os.environ.get("PURPLEFLEA_SHARED")
    shared = Path(configured) if configured else REPO.parent / "shared"
    real = shared / "data" / "real"
    needed = (
        real / heatmap_measured.KITTY,
        real / heatmap_measured.KNX / "open_interest.parquet",
        real / "wangrdotcom_wangrcli" / "whales_btc.json",
    )
    missing = [str(path) for path in needed if not path.exists()]
    if missing:
        pytest.skip(
            "REAL DATA MISSING: the heatmap's real-data verdict needs shared/data/real "
            f"(SOURCES.md section 5); not found: {', '.join(missing)}"
        )
    return real


def test_real_data_script_ends_with_exactly_one_verdict_line(tmp_path: Path) -> None:
    real = _real_data()
    done = subprocess.run(
        [
            sys.executable,
            str(REPO / "bench" / "heatmap_real.py"),
            "--data",
            str(real),
            "--chart",
            str(tmp_path / "heatmap_real.png"),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
    )
    lines = done.stdout.strip().splitlines()
    number = r"(-?\d+\.\d\d)"
    verdict = re.fullmatch(
        rf"real-data verdict: top-decile precision {number} \(Wilson 95% lower {number}, "
        rf"random 0\.10\); measured-map Spearman {number} vs baseline {number} "
        rf"\(persistence {number}\)",
        lines[-1],
    )
    assert verdict, lines[-1]
    assert sum(line.startswith("real-data verdict") for line in lines) == 1
    precision, lower, spearman, baseline, persistence = map(float, verdict.groups())
    assert 0 <= lower <= precision <= 1
    assert all(-1 <= value <= 1 for value in (spearman, baseline, persistence))
    for chart in ("heatmap_real", "heatmap_decile", "heatmap_measured", "heatmap_cross"):
        assert (tmp_path / f"{chart}.png").stat().st_size > 10_000
