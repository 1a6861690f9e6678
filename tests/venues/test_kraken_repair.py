"""Kraken Futures' REST trade history as a gap-repair source: the feed's events and ids."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from purpleflea.model import Instrument
from purpleflea.venues import FrameError, kraken
from purpleflea.venues.kraken.repair import PAGE, instruments, parse, request
from tests.conftest import shared_dir

FIXTURES = Path(__file__).parent / "kraken"
RECORDED = shared_dir() / "fixtures" / "exchanges"
RECORDED_LIQUIDATION = "krakenfutures_trade_liquidation_inverse_eth_recorded_tardis"
T = 1_760_000_000_000
CATALOG = {
    "PI_ETHUSD": Instrument(
        exchange="kraken_futures", symbol="PI_ETHUSD", kind="inverse", contract_size=1.0
    ),
}


def test_the_request_asks_for_the_trades_before_the_end_newest_first() -> None:
    url = urlsplit(request("PI_XBTUSD", T, T + 60_123))
    assert url.path == "/derivatives/api/v3/history"
    # ``lastTime`` is exclusive: one ms past the end keeps the end's own trades.
    assert parse_qs(url.query) == {
        "symbol": ["PI_XBTUSD"],
        "lastTime": ["2025-10-09T08:54:20.124Z"],
    }


def test_a_listed_liquidation_is_the_event_the_feed_gave() -> None:
    # The REST row of the recorded feed liquidation (PI_ETHUSD, 2020-07-01): same uid, side,
    # price; its qty as ``size`` and its time in ISO-8601. The fill before it is no event.
    page = parse((FIXTURES / "history_rest_doc.json").read_bytes(), "PI_ETHUSD", CATALOG)
    frame = (
        RECORDED / "krakenfutures_trade_liquidation_inverse_eth_recorded_tardis.json"
    ).read_text()
    assert page.events == kraken.normalize(frame, CATALOG)
    [event] = page.events
    assert event.id == "kraken_futures:e7f3a144-5c04-4ed6-999e-5922cd0b6160"
    assert (event.side, event.ts, event.size_usd) == ("short", 1593620853613, 250.0)
    assert not event.replay
    assert (page.more, page.last_ms) == (False, 1593620850001)  # the fill counts for paging


def test_a_full_page_says_more() -> None:
    rows = [
        {
            "price": 1.0,
            "side": "buy",
            "size": "1",
            "type": "fill",
            "uid": f"u{i}",
            "time": f"2025-10-09T08:53:20.{i:03d}Z",
        }
        for i in range(PAGE)
    ]
    page = parse(json.dumps({"history": rows, "result": "success"}).encode(), "PI_XBTUSD")
    assert (page.events, page.more, page.last_ms) == ([], True, T)


def test_an_error_answer_or_a_bad_trade_names_what_is_wrong() -> None:
    error = {"result": "error", "error": "apiLimitExceeded", "serverTime": ""}
    with pytest.raises(FrameError, match="apiLimitExceeded"):
        parse(json.dumps(error).encode(), "PI_XBTUSD")
    row = {
        "price": 1.0,
        "side": "sell",
        "size": "lots",
        "type": "liquidation",
        "uid": "u",
        "time": "2025-10-09T08:53:20.000Z",
    }
    with pytest.raises(FrameError, match=r"history\[0\]\.size"):
        parse(json.dumps({"history": [row], "result": "success"}).encode(), "PI_XBTUSD")


def test_it_asks_for_the_products_the_feed_subscribes_to() -> None:
    catalog = {**CATALOG, "PF_XBTUSD": CATALOG["PI_ETHUSD"], "IN_XBTUSD": CATALOG["PI_ETHUSD"]}
    assert instruments(catalog) == ["PF_XBTUSD", "PI_ETHUSD"]
