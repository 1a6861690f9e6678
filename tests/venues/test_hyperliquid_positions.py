"""Hyperliquid's public account data: trade addresses, positions, marks and open interest,
read from the documented example payloads (tests/venues/hyperliquid_public/) and from real
positions (shared/data/real/wangrdotcom_wangrcli/whales_btc.json)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from purpleflea.venues import FrameError, registry
from purpleflea.venues.hyperliquid import normalizer
from purpleflea.venues.hyperliquid.positions import (
    parse_clearinghouse,
    parse_contexts,
    trade_addresses,
)
from tests.fakes.hyperliquid import FakeHyperliquid, HeldPosition

PAYLOADS = Path(__file__).parent / "hyperliquid_public"
ACCOUNT = "0x31CA8395cf837de08b24da3f660e77761dfb974b"


def _payload(name: str) -> bytes:
    return (PAYLOADS / name).read_bytes()


def test_trades_give_both_addresses_of_every_trade_once() -> None:
    assert trade_addresses(_payload("trades.json")) == [
        "0x9b54264d7502f80163ea949038aad771eae67e38",
        "0x706bb519b05b7dc01d048af9a5e29d1ef5d6d9e3",
    ]
    twice = json.loads(_payload("trades.json"))
    twice["data"] = twice["data"] * 2
    assert len(trade_addresses(json.dumps(twice))) == 2


def test_other_channels_give_no_addresses() -> None:
    assert trade_addresses('{"channel":"subscriptionResponse","data":{"method":"subscribe"}}') == []
    assert trade_addresses('{"channel":"pong"}') == []


def test_a_user_that_is_no_address_is_named() -> None:
    frame = json.loads(_payload("trades.json"))
    frame["data"][0]["users"][1] = "0xnothex"
    with pytest.raises(FrameError, match=r"data\[0\].users: not an address: '0xnothex'"):
        trade_addresses(json.dumps(frame))


def test_clearinghouse_state_gives_positions_in_our_units() -> None:
    [position] = parse_clearinghouse(_payload("clearinghouse_state.json"), ACCOUNT)
    assert position.account == ACCOUNT.lower()
    assert (position.exchange, position.symbol, position.market) == (
        "hyperliquid",
        "ETH",
        "ETH-PERP",
    )
    assert (position.side, position.size, position.entry_price) == ("long", 0.0335, 2986.3)
    assert (position.margin, position.leverage) == ("isolated", 20)
    assert position.liquidation_price == pytest.approx(2866.26936529)
    assert position.notional_usd == pytest.approx(100.02765)


def _state(*positions: dict[str, Any]) -> bytes:
    return json.dumps(
        {"assetPositions": [{"type": "oneWay", "position": p} for p in positions]}
    ).encode()


def test_short_kpepe_and_unliquidatable_positions() -> None:
    short = {"coin": "kPEPE", "szi": "-2000", "entryPx": "0.02", "positionValue": "39.6",
             "liquidationPx": "0.03", "leverage": {"type": "cross", "value": 3}}  # fmt: skip
    safe = {"coin": "BTC", "szi": "1", "entryPx": "90000", "positionValue": "90000",
            "liquidationPx": None, "leverage": {"type": "cross", "value": 1}}  # fmt: skip
    closed = {**safe, "szi": "0.0"}
    pepe, btc = parse_clearinghouse(_state(short, safe, closed), ACCOUNT)
    assert (pepe.market, pepe.side, pepe.size) == ("PEPE-PERP", "short", 2_000_000)
    assert pepe.entry_price == pytest.approx(0.00002)
    assert pepe.liquidation_price == pytest.approx(0.00003)
    assert (btc.side, btc.liquidation_price) == ("long", None)


def test_a_bad_position_names_its_field() -> None:
    bad = {"coin": "BTC", "szi": "1", "entryPx": "90000", "positionValue": "9",
           "liquidationPx": "abc", "leverage": {"type": "cross", "value": 2}}  # fmt: skip
    with pytest.raises(FrameError, match=r"assetPositions\[0\].position.liquidationPx"):
        parse_clearinghouse(_state(bad), ACCOUNT)
    with pytest.raises(FrameError, match=r"leverage\.type is not cross/isolated: .x."):
        parse_clearinghouse(_state({**bad, "leverage": {"type": "x"}}), ACCOUNT)


def test_real_whale_positions_keep_their_liquidation_prices(shared: Path) -> None:
    whales = json.loads((shared / "data/real/wangrdotcom_wangrcli/whales_btc.json").read_bytes())[
        "active_whales"
    ]
    for whale in whales:
        held = whale["position"]
        body = _state(
            {
                "coin": "BTC",
                "szi": str(held["size"]),
                "entryPx": str(held["entry_px"]),
                "positionValue": str(abs(held["size"]) * held["entry_px"]),
                "liquidationPx": held["liquidation_px"],
                "leverage": {"type": held["leverage_type"], "value": held["leverage_value"]},
            }
        )
        [position] = parse_clearinghouse(body, whale["wallet"])
        assert position.side == whale["side"].lower()
        assert position.size == pytest.approx(whale["size"])
        expected = held["liquidation_px"]
        assert position.liquidation_price == (None if expected is None else float(expected))


def test_meta_and_asset_ctxs_give_mark_and_open_interest_per_market() -> None:
    contexts = parse_contexts(_payload("meta_and_asset_ctxs.json"))
    btc, pepe = contexts["BTC-PERP"], contexts["PEPE-PERP"]
    assert (btc.mark_price, btc.open_interest) == (97000.5, 1000.5)
    assert btc.open_interest_usd == pytest.approx(97000.5 * 1000.5)
    assert pepe.open_interest == pytest.approx(2e12)
    assert pepe.mark_price == pytest.approx(0.0198 / 1000)
    assert pepe.open_interest_usd == pytest.approx(2e9 * 0.0198)


def test_user_events_liquidation_fill_is_the_liquidated_long() -> None:
    victim = "0x94d3735543ecb3d339064151118644501c933814"
    [event] = normalizer.normalize_user_events(
        _payload("user_events_liquidation.json"), owner=victim
    )
    assert (event.exchange, event.market, event.side) == ("hyperliquid", "BTC-PERP", "long")
    assert (event.price, event.quantity) == (61104.5, 0.5)
    assert event.liquidated_user == victim
    assert (
        normalizer.normalize_user_events('{"channel":"user","data":{"funding":{}}}', owner=victim)
        == []
    )


def test_the_registry_lists_its_position_sampling_with_the_documented_limits() -> None:
    [sampling] = registry.position_sources()
    assert sampling.exchange == "hyperliquid"
    assert (sampling.weight_per_minute, sampling.account_weight) == (1200, 2)
    assert json.loads(sampling.trades_subscription("BTC"))["subscription"] == {
        "type": "trades",
        "coin": "BTC",
    }
    assert sampling.account_request(ACCOUNT, "") == {"type": "clearinghouseState", "user": ACCOUNT}
    assert sampling.contexts_request("") == {"type": "metaAndAssetCtxs"}


def test_builder_dex_coins_are_asked_for_on_their_dex() -> None:
    # HIP-3 coins are "dex:COIN" (the recorded xyz:CRWV fill); without "dex" the info endpoint
    # answers for the first perp dex only (docs, info endpoint > Perpetuals; python SDK
    # user_state(address, dex="")).
    [sampling] = registry.position_sources()
    assert [sampling.scope(coin) for coin in ("BTC", "kPEPE", "xyz:CRWV")] == ["", "", "xyz"]
    assert sampling.account_request(ACCOUNT, "xyz") == {
        "type": "clearinghouseState",
        "user": ACCOUNT,
        "dex": "xyz",
    }
    assert sampling.contexts_request("xyz") == {"type": "metaAndAssetCtxs", "dex": "xyz"}
    [trade] = sampling.parse_trades(
        '{"channel":"trades","data":[{"coin":"xyz:CRWV","side":"A","px":"116.86","sz":"2.47",'
        f'"time":1786628572099,"hash":"0x0","tid":1,"users":["{ACCOUNT}","{ACCOUNT}"]}}]}}'
    )
    assert (trade.market, trade.symbol) == ("CRWV-PERP", "xyz:CRWV")


def test_the_local_server_reports_whole_leverage_and_the_exact_liquidation_price() -> None:
    liquidation = 91_234.56789
    server = FakeHyperliquid(
        {"0xabc": [HeldPosition("BTC", 0.5, 100_000.0, liquidation, 11.7, "isolated")]},
        {"BTC": (100_000.0, 10.0)},
    )
    state = server.clearinghouse_state("0xabc")
    raw = state["assetPositions"][0]["position"]
    # Hyperliquid's leverage is the account's whole-number setting; 11.7x is 12x plus margin.
    assert raw["leverage"] == {"type": "isolated", "value": 12}
    assert isinstance(raw["leverage"]["value"], int)
    assert float(raw["marginUsed"]) == pytest.approx(0.5 * 100_000.0 / 11.7)
    [position] = registry.position_sources()[0].parse_account(json.dumps(state).encode(), "0xabc")
    assert position.leverage == 12
    assert position.liquidation_price == liquidation  # the truth's own, not rederived
    server.positions["0xabc"] = [HeldPosition("BTC", 0.5, 100_000.0, liquidation, 20, "cross")]
    whole = server.clearinghouse_state("0xabc")
    assert whole["assetPositions"][0]["position"]["leverage"]["value"] == 20
