"""Hyperliquid's REST payloads through our open-interest poller's parser."""

from __future__ import annotations

from pathlib import Path

import pytest

from purpleflea.venues.hyperliquid import open_interest
from purpleflea.venues.hyperliquid.positions import parse_contexts

PUBLIC = Path(__file__).parent / "hyperliquid_public"


def test_polled_k_coins_are_in_real_coins_like_their_liquidations() -> None:
    # metaAndAssetCtxs in the documented [meta, ctxs] shape (Hyperliquid's "Retrieve
    # perpetuals asset contexts" example fields), BTC and kPEPE: kPEPE's markPx is per 1,000
    # PEPE and its openInterest counts bundles of 1,000. The heatmap poller delivered them as
    # they came, so PEPE-PERP's mark from Hyperliquid was 1,000 times everyone else's.
    [source] = open_interest.SOURCES
    body = (PUBLIC / "meta_and_asset_ctxs.json").read_bytes()
    readings = {r.symbol: r for r in source.parse(body, {})}
    btc, pepe = readings["BTC"], readings["kPEPE"]
    assert (btc.mark_price, btc.open_interest) == (97000.5, 1000.5)
    assert pepe.mark_price == pytest.approx(0.0198 / 1000)  # per PEPE
    assert pepe.open_interest == pytest.approx(2e12)  # PEPE, not bundles
    assert pepe.mark_price * pepe.open_interest == pytest.approx(0.0198 * 2e9)  # same USD


def test_delisted_markets_give_no_reading() -> None:
    # A verbatim prefix of the live mainnet metaAndAssetCtxs answer captured 2026-09-03 (a
    # public Rust Hyperliquid client's test fixture; marginTables emptied there): the
    # universe keeps delisted coins (MATIC, "isDelisted":true) with a ctx frozen at delisting,
    # markPx 0.37621 and openInterest 0.0. Polled as a reading, that stale mark reached the
    # heatmap feed every poll as MATIC-PERP's price and widened its swept range to it.
    [source] = open_interest.SOURCES
    body = (PUBLIC / "meta_and_asset_ctxs_delisted.json").read_bytes()
    readings = {r.symbol: r for r in source.parse(body, {})}
    assert sorted(readings) == ["ATOM", "BTC", "ETH"]
    assert (readings["ATOM"].mark_price, readings["ATOM"].open_interest) == (1.5008, 1846225.26)
    assert sorted(parse_contexts(body)) == ["ATOM-PERP", "BTC-PERP", "ETH-PERP"]
