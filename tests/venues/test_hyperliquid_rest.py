"""Hyperliquid's REST payloads through our open-interest poller's parser."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from purpleflea.venues._open_interest import PollError
from purpleflea.venues.hyperliquid import open_interest
from purpleflea.venues.hyperliquid.positions import parse_contexts
from purpleflea.venues.venue import Reading

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


def test_perp_dexs_give_the_first_dex_then_each_builder_dex_in_order() -> None:
    # The documented answer (Hyperliquid docs, info endpoint > Perpetuals, "Retrieve all
    # perpetual dexs"): null is the first perp dex, asked without "dex".
    assert open_interest.parse_dexes((PUBLIC / "perp_dexs.json").read_bytes()) == ("", "test")
    # The names of a recorded mainnet answer (a public Rust test's PERP_DEXS, "Recorded from
    # POST /info {"type":"perpDexs"}", code index id 70787614331), deployers shortened there.
    recorded = json.dumps(
        [
            None,
            {"name": "xyz", "fullName": "XYZ", "deployer": "0x88"},
            {"name": "flx", "fullName": "Felix Exchange", "deployer": "0x2f"},
            {"name": "mkts", "fullName": "Markets By Kinetiq", "deployer": "0x71"},
            {"name": "km", "fullName": "Markets by Kinetiq", "deployer": "0x71"},
            {"name": "cash", "fullName": "dreamcash", "deployer": "0xff"},
            {"name": "para", "fullName": "Paragon", "deployer": "0x88"},
        ]
    ).encode()
    assert open_interest.parse_dexes(recorded) == ("", "xyz", "flx", "mkts", "km", "cash", "para")
    # The first dex is asked even when an answer does not list it; entries naming no dex
    # are skipped; an answer that is no list is an error.
    assert open_interest.parse_dexes(b'[{"name": "xyz"}, null, {"fullName": "?"}]') == ("", "xyz")
    with pytest.raises(PollError, match="perpDexs: expected a list"):
        open_interest.parse_dexes(b'{"error": "busy"}')


def test_a_builder_dex_is_asked_by_name_and_read_under_its_coins_own_names() -> None:
    # metaAndAssetCtxs answers for one perp dex: the first without "dex", a builder dex only
    # to {"dex": name}, its universe names prefixed "dex:" (live answers quoted in public
    # notes: {"type":"metaAndAssetCtxs","dex":"xyz"} "returns prefixed HIP-3 names such as
    # xyz:TSLA", code index id 69887509738). The answer below is in the documented shape.
    assert open_interest.contexts_request("") == {"type": "metaAndAssetCtxs"}
    assert open_interest.contexts_request("hyna") == {"type": "metaAndAssetCtxs", "dex": "hyna"}
    body = json.dumps(
        [
            {
                "universe": [
                    {"name": "hyna:BTC", "szDecimals": 5, "maxLeverage": 20},
                    {"name": "hyna:OLD", "szDecimals": 2, "maxLeverage": 3, "isDelisted": True},
                ]
            },
            [
                {"markPx": "105000.0", "openInterest": "50.5", "oraclePx": "105010.0"},
                {"markPx": "0.5", "openInterest": "0.0", "oraclePx": "0.5"},
            ],
        ]
    ).encode()
    [source] = open_interest.SOURCES
    # hyna:BTC is a listing of BTC-PERP with its own mark, never the first dex's BTC; the
    # delisted coin gives no reading on a builder dex as on the first.
    assert source.parse(body, {}) == [Reading("hyna:BTC", 105000.0, 50.5)]
    assert parse_contexts(body).keys() == {"BTC-PERP"}
