"""Deribit's REST trade history as a gap-repair source: the same ids as the live channel."""

from __future__ import annotations

import json
from urllib.parse import parse_qs, urlsplit

import pytest

from purpleflea.venues import FrameError
from purpleflea.venues.deribit import normalize
from purpleflea.venues.deribit.repair import instruments, parse, request
from tests.fakes.history import notification, trade

T = 1_760_000_000_000


def _answer(*trades: dict[str, object], more: bool = False) -> bytes:
    result = {"trades": list(trades), "has_more": more}
    return json.dumps({"jsonrpc": "2.0", "result": result, "usIn": 1, "usOut": 2}).encode()


def test_the_request_asks_for_the_window_oldest_first() -> None:
    url = urlsplit(request("BTC-PERPETUAL", T, T + 60_000))
    assert url.path == "/api/v2/public/get_last_trades_by_instrument_and_time"
    assert parse_qs(url.query) == {
        "instrument_name": ["BTC-PERPETUAL"],
        "start_timestamp": [str(T)],
        "end_timestamp": [str(T + 60_000)],
        "count": ["1000"],
        "sorting": ["asc"],
    }


def test_history_trades_become_the_events_the_live_channel_gives() -> None:
    taker = trade("BTC-7", T)
    both = trade("BTC-8", T + 1, liquidation="MT")
    plain = trade("BTC-9", T + 2, liquidation=None)
    page = parse(_answer(taker, both, plain, more=True))
    live = normalize(notification(taker, both, plain))
    assert page.events == live
    assert [e.id for e in page.events] == [
        "deribit:BTC-7:long",
        "deribit:BTC-8:long",
        "deribit:BTC-8:short",
    ]
    assert page.more is True
    assert parse(_answer()).events == []


def test_an_error_answer_or_a_bad_trade_names_what_is_wrong() -> None:
    error = {"jsonrpc": "2.0", "error": {"code": 10020, "message": "invalid_instrument_name"}}
    with pytest.raises(FrameError, match="invalid_instrument_name"):
        parse(json.dumps(error).encode())
    bad = trade("BTC-1", T)
    bad["price"] = "abc"
    with pytest.raises(FrameError, match="price"):
        parse(_answer(bad))


def test_it_asks_for_every_future_the_feed_carries_dated_ones_too() -> None:
    catalog = {"BTC-PERPETUAL": object(), "ETH-27DEC24": object(), "ETH-PERPETUAL": object()}
    assert instruments(catalog) == [  # type: ignore[arg-type]
        "BTC-PERPETUAL",
        "ETH-27DEC24",
        "ETH-PERPETUAL",
    ]


def test_a_page_of_ordinary_trades_says_where_the_next_one_starts() -> None:
    # Without it a full page with no liquidation in it would stop the paging (nothing to
    # take a time from) and the rest of the window would never be asked.
    plain = [trade(f"BTC-{n}", T + n, liquidation=None) for n in range(3)]
    page = parse(_answer(*plain, more=True))
    assert (page.events, page.more, page.last_ms) == ([], True, T + 2)
