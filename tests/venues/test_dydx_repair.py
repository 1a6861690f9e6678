"""The dYdX v4 indexer's REST trade list as a gap-repair source: the channel's ids."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from purpleflea.model import Instrument
from purpleflea.venues import FrameError, dydx
from purpleflea.venues._frame import ms_iso
from purpleflea.venues.dydx.repair import PAGE, instruments, parse, request
from tests.fakes.history import dydx_trade

FIXTURES = Path(__file__).parent / "dydx"
T = 1_760_000_000_000


def test_the_request_asks_for_the_trades_at_or_before_the_end() -> None:
    url = urlsplit(request("BTC-USD", T, T + 60_123))
    assert url.path == "/v4/trades/perpetualMarket/BTC-USD"
    assert parse_qs(url.query) == {
        "limit": ["1000"],
        "createdBeforeOrAt": ["2025-10-09T08:54:20.123Z"],
    }
    assert ms_iso(0) == "1970-01-01T00:00:00.000Z"


def test_the_documented_trades_give_the_events_the_channel_gives() -> None:
    # The docs' v4_trades example trades in the REST envelope (plus ``createdAtHeight``, which
    # only the REST list carries): the indexer answers a subscribe with this endpoint.
    body = (FIXTURES / "trades_rest_doc.json").read_bytes()
    page = parse(body, "BTC-USD")
    trades = json.loads(body)["trades"]
    push = {"type": "channel_data", "channel": "v4_trades", "id": "BTC-USD"}
    push["contents"] = {"trades": trades}  # type: ignore[assignment]
    assert page.events == dydx.normalize(json.dumps(push))
    assert [e.id for e in page.events] == [
        "dydx_v4:8ee6d90d-272d-5edd-bf0f-2e4d6ae3d3b7",
        "dydx_v4:38e64479-af09-5417-a795-195f83879156",
    ]
    assert all(e.side == "short" and not e.replay for e in page.events)  # BUY closes a short
    assert (page.more, page.last_ms) == (False, 1_680_568_159_353)  # the LIMIT trades count too


def test_a_full_page_of_ordinary_trades_still_moves_on() -> None:
    trades = [dydx_trade(f"t-{i}", T - i, kind="LIMIT") for i in range(PAGE)]
    page = parse(json.dumps({"trades": trades}).encode(), "BTC-USD")
    assert page.events == []
    assert (page.more, page.last_ms) == (True, T - PAGE + 1)


def test_an_error_answer_or_a_bad_trade_names_what_is_wrong() -> None:
    error = {"errors": [{"msg": "ticker must be a valid ticker (BTC-USD, etc)"}]}
    with pytest.raises(FrameError, match="valid ticker"):
        parse(json.dumps(error).encode(), "XYZ")
    bad = dydx_trade("t-1", T)
    bad["createdAt"] = "yesterday"
    with pytest.raises(FrameError, match=r"answer\.trades\[0\]\.createdAt"):
        parse(json.dumps({"trades": [bad]}).encode(), "BTC-USD")


def test_it_asks_for_the_markets_the_feed_subscribes_to() -> None:
    row = Instrument(exchange="dydx_v4", symbol="BTC-USD", kind="linear", contract_size=1.0)
    catalog = {"BTC-USD": row, "ETH-USD": row}
    assert instruments(catalog) == ["BTC-USD", "ETH-USD"]
