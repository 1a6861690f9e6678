"""OKX's REST liquidation orders as a gap-repair source: the channel's events and ids."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from purpleflea.model import Instrument
from purpleflea.venues import FrameError, okx
from purpleflea.venues.okx.repair import instruments, parse, request
from tests.fakes.history import okx_detail

FIXTURES = Path(__file__).parent / "okx"
T = 1_760_000_000_000
CATALOG = {
    "BTC-USDT-SWAP": Instrument(
        exchange="okx", symbol="BTC-USDT-SWAP", kind="linear", contract_size=0.01
    ),
    "IOST-USDT-SWAP": Instrument(
        exchange="okx", symbol="IOST-USDT-SWAP", kind="linear", contract_size=1000.0
    ),
    "BTC-USD-251226": Instrument(
        exchange="okx", symbol="BTC-USD-251226", kind="inverse", contract_size=100.0
    ),
}


def test_the_request_asks_for_one_family_filled_newest_first_up_to_the_end() -> None:
    url = urlsplit(request("SWAP:BTC-USDT", T, T + 60_000))
    assert url.path == "/api/v5/public/liquidation-orders"
    assert parse_qs(url.query) == {
        "instType": ["SWAP"],
        "instFamily": ["BTC-USDT"],
        "state": ["filled"],
        "after": [str(T + 60_001)],  # exclusive: the end's own events stay on the page
        "limit": ["100"],
    }


def test_the_documented_answer_gives_the_event_the_channel_gives() -> None:
    # The docs' IOST-USDT-SWAP example item (the channel's page shows the same one) in the REST
    # envelope with its extra ``totalLoss``: the REST example itself is not in our sources.
    body = (FIXTURES / "liquidation_orders_rest_doc.json").read_bytes()
    page = parse(body, catalog=CATALOG)
    item = json.loads(body)["data"][0]
    push = json.dumps(
        {"arg": {"channel": "liquidation-orders", "instType": "SWAP"}, "data": [item]}
    )
    assert page.events == okx.normalize(push, CATALOG)
    [event] = page.events
    assert event.id == "okx:IOST-USDT-SWAP:1692266434010:short:buy:13:0.007831"
    assert (event.side, event.ts, event.quantity) == ("short", 1692266434010, 13_000.0)
    assert event.size_usd == pytest.approx(13_000 * 0.007831)
    assert page.more is False  # one detail: fewer than a full page
    assert page.last_ms == 1692266434010


def test_a_full_page_says_more_and_where_the_next_one_starts() -> None:
    details = [okx_detail(T - i, sz="1") for i in range(100)]
    item = {"details": details, "instId": "BTC-USDT-SWAP", "instType": "SWAP"}
    page = parse(json.dumps({"code": "0", "msg": "", "data": [item]}).encode(), catalog=CATALOG)
    assert len(page.events) == 100
    assert (page.more, page.last_ms) == (True, T - 99)


def test_an_item_without_its_type_has_the_type_asked_for() -> None:
    item = {"details": [okx_detail(T)], "instId": "BTC-USDT-SWAP"}
    body = json.dumps({"code": "0", "msg": "", "data": [item]}).encode()
    assert len(parse(body, "SWAP:BTC-USDT", CATALOG).events) == 1
    assert parse(body, "", CATALOG).events == []  # no type at all: not one of ours


def test_an_error_answer_or_a_bad_detail_names_what_is_wrong() -> None:
    error = {"code": "51000", "msg": "Parameter instFamily error", "data": []}
    with pytest.raises(FrameError, match="instFamily"):
        parse(json.dumps(error).encode(), catalog=CATALOG)
    bad = {"bkPx": "x", "posSide": "net", "side": "sell", "sz": "1", "ts": str(T)}
    item = {"details": [bad], "instId": "BTC-USDT-SWAP", "instType": "SWAP"}
    with pytest.raises(FrameError, match=r"data\[0\]\.details\[0\]\.bkPx"):
        parse(json.dumps({"code": "0", "msg": "", "data": [item]}).encode(), catalog=CATALOG)


def test_it_asks_every_swap_and_futures_family_of_the_catalog_once() -> None:
    catalog = {**CATALOG, "BTC-USDT-250328": CATALOG["BTC-USD-251226"], "BTC-USDT": None}
    assert instruments(catalog) == [  # type: ignore[arg-type]
        "FUTURES:BTC-USD",
        "FUTURES:BTC-USDT",
        "SWAP:BTC-USDT",
        "SWAP:IOST-USDT",
    ]
