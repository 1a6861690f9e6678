"""Every payload in shared/fixtures/exchanges normalizes to exactly its expected events.

Each fixture pairs a raw frame (``<name>.json``) with the events it must produce
(``<name>.expected.json``). The table below says which normalizer reads each fixture and which
instrument facts it gets (the ``instrument_meta_used`` of the expected file). A fixture added to
shared/ without a row here fails ``test_every_fixture_has_a_case``.

Our own frames in tests/venues/frames/ (shapes the shared set lacks: Deribit ``MT``, BitMEX
inserts, snapshots on subscribe, ...) are checked the same way when they have an expected file.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from purpleflea.model import Instrument, VenueLiquidation
from purpleflea.venues import (
    binance,
    bitget,
    bitmex,
    bybit,
    deribit,
    dydx,
    gate,
    htx,
    hyperliquid,
    kraken,
    okx,
)
from tests.conftest import shared_dir
from tests.venues.frame_catalog import frame_files, normalizer_for_frame_file

Normalize = Callable[[bytes], list[VenueLiquidation]]


def _catalog(exchange: str, *rows: tuple[str, str, float]) -> dict[str, Instrument]:
    return {
        symbol: Instrument(exchange=exchange, symbol=symbol, kind=kind, contract_size=size)  # type: ignore[arg-type]
        for symbol, kind, size in rows
    }


# A watched address that is not the liquidated user: the userFills fixture was recorded from
# such a subscription (see its expected file's notes).
_WATCHED = "0x1111111111111111111111111111111111111111"

CASES: dict[str, Normalize] = {
    "binance_usdm_forceorder_doc": binance.normalize_usdm,
    "binance_usdm_forceorder_recorded_ccxt": binance.normalize_usdm,
    "binance_coinm_forceorder_doc": lambda f: binance.normalize_coinm(
        f, _catalog("binance_coinm", ("BTCUSD_200925", "inverse", 100.0))
    ),
    "bitget_uta_liquidation_doc": bitget.normalize,
    "bitmex_liquidation_delete_recorded_tardis": bitmex.normalize,
    "bybit_allliquidation_doc": bybit.normalize,
    "bybit_allliquidation_recorded_tardis": bybit.normalize,
    "bybit_liquidation_legacy_doc": bybit.normalize,
    "bybit_liquidation_legacy_linear_recorded": bybit.normalize,
    "deribit_trades_liquidation_maker_recorded_tardis": deribit.normalize,
    "dydx_v4_trades_liquidated_doc": dydx.normalize,
    # No catalog: the HEI_USDT multiplier is unknown offline, so sizes stay unknown.
    "gate_public_liquidates_recorded_issue132_a": gate.normalize,
    "htx_linear_swap_liquidation_orders_recorded_tardis": lambda f: htx.normalize(
        f, _catalog("htx", ("BTC-USDT", "linear", 0.001))
    ),
    "hyperliquid_node_fills_liquidation_counterparty_recorded": hyperliquid.normalize_node_fills,
    "hyperliquid_userfills_fill_liquidation_counterparty_recorded": lambda f: (
        hyperliquid.normalize_fill(f, owner=_WATCHED)
    ),
    "krakenfutures_trade_liquidation_inverse_eth_recorded_tardis": lambda f: kraken.normalize(
        f, _catalog("kraken_futures", ("PI_ETHUSD", "inverse", 1.0))
    ),
    "okx_liquidation_orders_demo_recorded_ccxt": lambda f: okx.normalize(
        f, _catalog("okx", ("BTC-USDT-SWAP", "linear", 0.01))
    ),
    "okx_liquidation_orders_doc": lambda f: okx.normalize(
        f, _catalog("okx", ("IOST-USDT-SWAP", "linear", 1000.0))
    ),
}


def _fixture_names() -> list[str]:
    folder = shared_dir() / "fixtures" / "exchanges"
    return sorted(p.name.removesuffix(".expected.json") for p in folder.glob("*.expected.json"))


def _load(folder: Path, name: str) -> tuple[bytes, dict[str, Any]]:
    raw = (folder / f"{name}.json").read_bytes()
    expected = json.loads((folder / f"{name}.expected.json").read_text())
    return raw, expected


def _all_cases() -> list[tuple[str, Normalize, Path]]:
    shared = shared_dir() / "fixtures" / "exchanges"
    cases = [(name, CASES[name], shared) for name in _fixture_names() if name in CASES]
    for path in frame_files():
        if path.with_name(f"{path.stem}.expected.json").exists():
            cases.append((path.stem, normalizer_for_frame_file(path.stem), path.parent))
    return cases


ALL_CASES = _all_cases()


def _same(actual: object, expected: object) -> bool:
    if isinstance(expected, float | int) and not isinstance(expected, bool):
        return isinstance(actual, float | int) and math.isclose(
            actual, expected, rel_tol=1e-9, abs_tol=1e-12
        )
    return actual == expected


def test_every_fixture_has_a_case() -> None:
    assert sorted(CASES) == _fixture_names()


@pytest.mark.parametrize(("name", "normalize", "folder"), ALL_CASES, ids=[c[0] for c in ALL_CASES])
def test_frame_normalizes_to_expected_events(name: str, normalize: Normalize, folder: Path) -> None:
    raw, expected = _load(folder, name)
    events = normalize(raw)
    assert len(events) == len(expected["events"]), events
    for got, want in zip(events, expected["events"], strict=True):
        for key, value in want.items():
            attribute = "ts" if key == "ts_ms" else key
            actual = getattr(got, attribute)
            assert _same(actual, value), f"{name}: {key} is {actual!r}, expected {value!r}"


@pytest.mark.parametrize(("name", "normalize", "folder"), ALL_CASES, ids=[c[0] for c in ALL_CASES])
def test_ids_are_stable_and_unique(name: str, normalize: Normalize, folder: Path) -> None:
    raw, _ = _load(folder, name)
    first = normalize(raw)
    assert [e.id for e in first] == [e.id for e in normalize(raw)]
    assert len({e.id for e in first}) == len(first)
