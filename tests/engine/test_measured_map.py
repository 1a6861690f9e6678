"""The measured map is the sampled positions themselves, bucketed by their liquidation price."""

from __future__ import annotations

import json
from pathlib import Path

import msgspec
import pytest

from purpleflea.engine.measured_map import agreement, measured_map, spearman
from purpleflea.model import Heatmap, Side
from purpleflea.positions import Position


def _position(account: str, side: Side, liquidation: float | None, usd: float) -> Position:
    return Position(
        account=account,
        exchange="venue",
        symbol="BTC",
        market="BTC-PERP",
        side=side,
        size=usd / 100_000,
        entry_price=100_000,
        margin="cross",
        leverage=5,
        liquidation_price=liquidation,
        notional_usd=usd,
    )


def test_each_position_lands_in_the_bucket_of_its_liquidation_price() -> None:
    held = [
        _position("a", "long", 91_234.0, 5e6),
        _position("b", "long", 91_999.0, 1e6),
        _position("c", "short", 110_000.0, 2e6),
        _position("c", "long", None, 3e6),  # cannot be liquidated: coverage only
        _position("d", "short", 200_000.0, 4e6),  # outside the range: coverage only
        msgspec.structs.replace(
            _position("e", "long", 91_000.0, 7e6), market="ETH-PERP"
        ),  # another market
    ]
    found = measured_map(
        "BTC-PERP", held, mark_price=100_000, open_interest_usd=10e6, ts=1, bucket=1_000
    )
    assert found.bucket_size == 1_000
    assert (found.prices[0], found.prices[-1]) == (80_000, 119_000)
    by_price = dict(
        zip(found.prices, zip(found.long_usd, found.short_usd, strict=True), strict=True)
    )
    assert by_price[91_000] == (6e6, 0.0)
    assert by_price[110_000] == (0.0, 2e6)
    assert (sum(found.long_usd), sum(found.short_usd)) == (6e6, 2e6)
    assert found.sampled_usd == 15e6
    assert found.coverage == pytest.approx(15e6 / 20e6)
    assert (found.accounts, found.positions) == (4, 5)


def test_coverage_is_capped_at_one_and_zero_without_open_interest() -> None:
    held = [_position("a", "long", 95_000, 30e6)]
    assert (
        measured_map("BTC-PERP", held, mark_price=1e5, open_interest_usd=10e6, ts=1).coverage == 1
    )
    assert measured_map("BTC-PERP", held, mark_price=1e5, open_interest_usd=0, ts=1).coverage == 0


def test_real_whales_sum_to_their_own_notional(shared: Path) -> None:
    whales = json.loads((shared / "data/real/wangrdotcom_wangrcli/whales_btc.json").read_bytes())[
        "active_whales"
    ]
    mark = 91_000.0
    held = [
        _position(
            w["wallet"],
            "long" if w["side"] == "LONG" else "short",
            None
            if w["position"]["liquidation_px"] is None
            else float(w["position"]["liquidation_px"]),
            w["size"] * mark,
        )
        for w in whales
    ]
    found = measured_map(
        "BTC-PERP", held, mark_price=mark, open_interest_usd=2e9, ts=1, range_pct=60
    )
    inside = [
        p
        for p in held
        if p.liquidation_price is not None and 0.4 * mark <= p.liquidation_price < 1.6 * mark
    ]
    for side, usd in (("long", found.long_usd), ("short", found.short_usd)):
        assert sum(usd) == pytest.approx(sum(p.notional_usd for p in inside if p.side == side))
    assert found.accounts == len({w["wallet"] for w in whales})
    assert found.sampled_usd == pytest.approx(sum(w["size"] for w in whales) * mark)


def test_bad_inputs_are_named() -> None:
    with pytest.raises(ValueError, match="measured map BTC-PERP: mark_price must be positive"):
        measured_map("BTC-PERP", [], mark_price=0, open_interest_usd=1, ts=1)


def test_spearman_ranks_with_ties_and_refuses_nothing_to_rank() -> None:
    assert spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    assert spearman([1, 1, 2, 3], [0, 0, 5, 9]) == pytest.approx(1.0)  # ties: average ranks
    assert spearman([1, 2, 3], [7, 7, 7]) is None


def test_agreement_scores_the_sides_the_measured_map_fills() -> None:
    held = [_position("a", "long", 91_500, 5e6), _position("b", "long", 93_500, 1e6)]
    measured = measured_map("BTC-PERP", held, mark_price=1e5, open_interest_usd=1e7, ts=1)
    n = len(measured.prices)
    # An estimate that ranks the two filled buckets the same way as the truth, and 0 elsewhere.
    same = Heatmap(
        market="BTC-PERP",
        ts=1,
        mark_price=1e5,
        bucket_size=measured.bucket_size,
        prices=measured.prices,
        long_usd=tuple(u * 3 for u in measured.long_usd),
        short_usd=(1.0,) * n,  # the empty measured side is not scored
        clusters=(),
    )
    assert agreement(same, measured) == pytest.approx(1.0)
    flipped = msgspec.structs.replace(same, long_usd=tuple(-u for u in same.long_usd))
    assert agreement(flipped, measured) == pytest.approx(-1.0)
    with pytest.raises(ValueError, match="buckets differ"):
        agreement(msgspec.structs.replace(same, prices=same.prices[1:]), measured)
