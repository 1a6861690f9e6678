"""The measured map is the sampled positions themselves, bucketed by their liquidation price."""

from __future__ import annotations

import json
from pathlib import Path

import msgspec
import pytest

from purpleflea.engine.measured_map import measured_map
from purpleflea.model import Side
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
