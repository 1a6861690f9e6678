"""A liquidation of a contract the instrument catalog lacks (a coin listed since the catalog
was fetched) is dropped, never published with a guessed size, and the health answer names
its symbol: an operator sees which contract is missing, not only how many events went."""

from __future__ import annotations

import json
import logging

import pytest

from purpleflea.ingest import feeds
from purpleflea.ingest.connection_stats import MAX_UNSIZED_SYMBOLS, ConnectionStats
from purpleflea.ingest.dedupe import Deduper
from purpleflea.ingest.received_frames import deliver
from purpleflea.model import VenueLiquidation
from tests.fakes.harness import catalogs_for_tests

SPECS = {spec.name: spec for spec in feeds.build_feeds(catalogs_for_tests())}


def _okx_push(*inst_ids: str) -> str:
    """One liquidation-orders push with a detail of each instrument (OKX docs-v5,
    liquidation-orders channel: ``data[].instId`` and ``details[]``)."""
    detail = {"bkPx": "1.5", "posSide": "net", "side": "sell", "sz": "3", "ts": "1718000000000"}
    items = [{"instId": i, "instType": "SWAP", "details": [detail]} for i in inst_ids]
    return json.dumps({"arg": {"channel": "liquidation-orders", "instType": "SWAP"}, "data": items})


def _deliver(name: str, *frames: str) -> tuple[ConnectionStats, list[VenueLiquidation]]:
    spec, stats, sink = SPECS[name], ConnectionStats(name), []
    for frame in frames:
        deliver(frame, 0, 0.0, spec, lambda e, _: sink.append(e), stats, Deduper())
    return stats, sink


def test_unsized_drops_are_counted_under_the_symbol_the_catalog_lacks(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # NEWCOIN-USDT-SWAP: a linear swap, whose ctVal OKX sets per coin (no rule to size it by).
    push = _okx_push("BTC-USDT-SWAP", "NEWCOIN-USDT-SWAP", "NEWCOIN-USDT-SWAP")
    with caplog.at_level(logging.WARNING, logger="purpleflea.ingest"):
        stats, sunk = _deliver("okx", push)
    assert [e.symbol for e in sunk] == ["BTC-USDT-SWAP"]
    assert stats.unsized == 2
    assert stats.snapshot(0.0)["unsized_symbols"] == {"NEWCOIN-USDT-SWAP": 2}
    # One warning per symbol, naming it and its market.
    warned = [r.getMessage() for r in caplog.records if "NEWCOIN-USDT-SWAP" in r.getMessage()]
    assert len(warned) == 1
    assert "NEWCOIN-PERP" in warned[0]


def test_a_bitmex_drop_is_named_by_symbol_though_its_id_is_the_order_id() -> None:
    # BitMEX's liquidation table (bitmex.com/app/wsAPI): an insert of a contract the catalog
    # lacks. The event id is the orderID, so the count is what names the contract.
    frame = json.dumps(
        {
            "table": "liquidation",
            "action": "insert",
            "data": [
                {
                    "orderID": "7f0c3a1e-0000-4000-8000-0000000000aa",
                    "symbol": "NEWUSDT",
                    "side": "Sell",
                    "price": 1.5,
                    "leavesQty": 1000,
                }
            ],
        }
    )
    stats, sunk = _deliver("bitmex", frame)
    assert sunk == []
    assert stats.snapshot(0.0)["unsized_symbols"] == {"NEWUSDT": 1}


def test_the_named_symbols_are_bounded_and_the_total_still_counts_every_drop() -> None:
    frames = [_okx_push(f"NEW{i}-USDT-SWAP") for i in range(MAX_UNSIZED_SYMBOLS + 5)]
    stats, _ = _deliver("okx", *frames)
    assert stats.unsized == MAX_UNSIZED_SYMBOLS + 5
    assert len(stats.unsized_symbols) == MAX_UNSIZED_SYMBOLS


def test_a_symbol_past_the_bound_is_not_warned_about_on_every_drop(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # A venue listing more new contracts than the bound (a stale bundled catalog that could not
    # be fetched again): a symbol past it is never remembered, so "the first of a symbol" was
    # every one of its drops, a WARNING per liquidation.
    frames = [_okx_push(f"NEW{i}-USDT-SWAP") for i in range(MAX_UNSIZED_SYMBOLS)]
    frames += [_okx_push("LATE-USDT-SWAP")] * 50
    with caplog.at_level(logging.WARNING, logger="purpleflea.ingest"):
        stats, _ = _deliver("okx", *frames)
    assert stats.unsized == MAX_UNSIZED_SYMBOLS + 50
    warned = [r for r in caplog.records if "LATE-USDT-SWAP" in r.getMessage()]
    assert len(warned) <= 1
