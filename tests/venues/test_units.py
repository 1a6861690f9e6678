"""Contracts to coins and USD: the one conversion every contract-sized exchange shares."""

from __future__ import annotations

import pytest

from purpleflea.model import ContractKind, Instrument
from purpleflea.venues import FrameError
from purpleflea.venues._units import UNKNOWN, from_contracts


def _instrument(kind: ContractKind, size: float, settle_usd: float | None = None) -> Instrument:
    return Instrument(
        exchange="x", symbol="S", kind=kind, contract_size=size, settle_usd=settle_usd
    )


def test_linear_contracts_hold_coins() -> None:
    sizes = from_contracts("x", 150, 60000.0, _instrument("linear", 0.0001))
    assert sizes.quantity == pytest.approx(0.015)
    assert sizes.size_usd == pytest.approx(900.0)


def test_inverse_contracts_hold_usd() -> None:
    sizes = from_contracts("x", 25, 50000.0, _instrument("inverse", 100.0))
    assert sizes.size_usd == 2500.0
    assert sizes.quantity == pytest.approx(0.05)


def test_quanto_contracts_need_the_settlement_price() -> None:
    assert from_contracts("x", 40, 3100.25, _instrument("quanto", 1e-6)) == UNKNOWN
    sizes = from_contracts("x", 40, 3100.25, _instrument("quanto", 1e-6, settle_usd=60000.0))
    assert sizes.size_usd == pytest.approx(7440.6)
    assert sizes.quantity == pytest.approx(2.4)


def test_unknown_instrument_is_never_guessed() -> None:
    assert from_contracts("x", 10, 1.0, None) == UNKNOWN


def test_overflowing_sizes_raise_frame_error() -> None:
    with pytest.raises(FrameError, match=r"^x frame: contracts \* contract_size computes to inf"):
        from_contracts("x", 1e308, 1.0, _instrument("linear", 1e10))
