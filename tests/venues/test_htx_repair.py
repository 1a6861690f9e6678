"""HTX's v3 REST liquidation orders as a gap-repair source: the topic's events and ids."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from purpleflea.model import Instrument
from purpleflea.venues import FrameError, htx
from purpleflea.venues.htx.repair import instruments, parse, request, request_after
from tests.conftest import shared_dir
from tests.fakes.history import htx_row

FIXTURES = Path(__file__).parent / "htx"
RECORDED = shared_dir() / "fixtures" / "exchanges"
T = 1_760_000_000_000
CATALOG = {
    "BTC-USDT": Instrument(exchange="htx", symbol="BTC-USDT", kind="linear", contract_size=0.001),
    "BTC-USD": Instrument(exchange="htx", symbol="BTC-USD", kind="inverse", contract_size=100.0),
}


def _push(*rows: dict[str, object]) -> str:
    return json.dumps({"op": "notify", "topic": "public.*.liquidation_orders", "data": list(rows)})


def test_linear_and_coin_margined_contracts_are_asked_at_their_own_paths() -> None:
    linear = urlsplit(request("BTC-USDT", T, T + 60_000))
    assert linear.path == "/linear-swap-api/v3/swap_liquidation_orders"
    assert parse_qs(linear.query) == {
        "contract": ["BTC-USDT"],
        "trade_type": ["0"],  # every liquidation order
        "start_time": [str(T)],
        "end_time": [str(T + 60_000)],
        "direct": ["next"],  # oldest first
    }
    assert urlsplit(request("BTC-USD", T, T + 1)).path == "/swap-api/v3/swap_liquidation_orders"
    after = parse_qs(urlsplit(request_after("BTC-USDT", T, T + 1, "452057")).query)
    assert after["from_id"] == ["452057"]


@pytest.mark.parametrize("name", ["liquidation_orders_linear_doc", "liquidation_orders_coin_doc"])
def test_the_documented_answers_give_the_events_the_topic_gives(name: str) -> None:
    body = (FIXTURES / f"{name}.json").read_bytes()
    page = parse(body, catalog=CATALOG)
    rows = json.loads(body)["data"]
    assert page.events == htx.normalize(_push(*rows), CATALOG)
    assert len(page.events) == 1
    assert (page.more, page.cursor) == (True, str(rows[0]["query_id"]))


def test_the_documented_answer_for_liquidated_longs_is_a_sell_read_as_a_long() -> None:
    # HTX's page documents this answer for ``trade_type=5`` ("5: Liquidate long positions"):
    # its ``direction`` "sell" is the liquidation order's side, so a sell is a long liquidated.
    body = (FIXTURES / "liquidation_orders_linear_doc.json").read_bytes()
    assert json.loads(body)["data"][0]["direction"] == "sell"
    [event] = parse(body, catalog=CATALOG).events
    assert (event.side, event.market) == ("long", "BTC-20211210")


def test_the_documented_coin_margined_order_is_a_short_closed_in_usd_contracts() -> None:
    page = parse((FIXTURES / "liquidation_orders_coin_doc.json").read_bytes(), catalog=CATALOG)
    [event] = page.events
    assert event.id == "htx:BTC-USD:1606381842485:buy:173.0:17102.9"
    assert (event.side, event.ts, event.size_usd) == ("short", 1606381842485, 17_300.0)


def test_a_recorded_topic_push_and_its_rest_row_share_the_id() -> None:
    # The topic sent ``"volume":227.0``; the REST history may spell it ``227``: both are read
    # as numbers, so the id (and the deduplication) does not depend on the spelling.
    frame = (RECORDED / "htx_linear_swap_liquidation_orders_recorded_tardis.json").read_text()
    [live] = htx.normalize(frame, CATALOG)
    row = {**json.loads(frame)["data"][0], "volume": 227, "query_id": 1}
    body = json.dumps({"code": 200, "msg": "", "data": [row], "ts": 0}).encode()
    [repaired] = parse(body, catalog=CATALOG).events
    assert repaired == live
    assert live.id == "htx:BTC-USDT:1608226502284:sell:227.0:23350.5"


def test_an_empty_page_ends_the_window() -> None:
    page = parse(b'{"code":200,"msg":"","data":[],"ts":1}')
    assert (page.events, page.more, page.cursor) == ([], False, None)


def test_an_error_answer_or_a_bad_row_names_what_is_wrong() -> None:
    with pytest.raises(FrameError, match="1067: The query window exceeds"):
        parse(b'{"code":1067,"msg":"The query window exceeds 2 hours","data":null,"ts":1}')
    row = {**htx_row(T), "direction": "sideways", "query_id": 1}
    with pytest.raises(FrameError, match=r"data\[0\]\.direction"):
        parse(json.dumps({"code": 200, "msg": "", "data": [row], "ts": 0}).encode())


def test_it_asks_the_swaps_and_linear_futures_of_the_catalog() -> None:
    catalog = {**CATALOG, "BTC-USDT-211210": CATALOG["BTC-USDT"], "BTC210326": CATALOG["BTC-USD"]}
    assert instruments(catalog) == ["BTC-USD", "BTC-USDT", "BTC-USDT-211210"]
