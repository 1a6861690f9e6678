"""Open-interest/mark pollers: documented bodies parse to one-side OI in coins; rate limits
and failures slow the poller down instead of crashing it."""

from __future__ import annotations

import email.utils
import json
import time
from collections.abc import Callable

import httpx
import pytest

from purpleflea.ingest import pollers
from purpleflea.model import Instrument, MarketSnapshot
from purpleflea.venues.binance import open_interest as binance_oi
from purpleflea.venues.bitmex import open_interest as bitmex_oi
from purpleflea.venues.bybit import open_interest as bybit_oi
from purpleflea.venues.dydx import open_interest as dydx_oi
from purpleflea.venues.gate import open_interest as gate_oi
from purpleflea.venues.hyperliquid import open_interest as hyperliquid_oi
from purpleflea.venues.okx import open_interest as okx_oi


def _body(value: object) -> bytes:
    return json.dumps(value).encode()


def test_bybit_prefers_the_single_side_open_interest() -> None:
    body = _body(
        {
            "retCode": 0,
            "result": {
                "list": [
                    {
                        "symbol": "BTCUSDT",
                        "markPrice": "100000",
                        "openInterest": "20",
                        "singleOpenInterest": "10",
                    },
                    {"symbol": "ETHUSDT", "markPrice": "3000", "openInterest": "50"},
                    {"symbol": "BTCUSD", "markPrice": "114898.43", "openInterest": "240113967"},
                    {"symbol": "BAD", "markPrice": "", "openInterest": "1"},
                ]
            },
        }
    )
    rows = {r.symbol: r for r in bybit_oi.parse(body, {})}
    assert rows["BTCUSDT"].open_interest == 10.0
    # Without the single side, half of openInterest (documented as both sides).
    assert rows["ETHUSDT"].open_interest == 25.0
    # Inverse open interest is USD: converted to coins at the mark.
    assert rows["BTCUSD"].open_interest == pytest.approx(240113967 / 2 / 114898.43)
    assert "BAD" not in rows


def test_okx_joins_open_interest_with_marks() -> None:
    merged = pollers.merge_bodies(
        [
            _body(
                {
                    "code": "0",
                    "data": [
                        {"instId": "BTC-USDT-SWAP", "oi": "5000", "oiCcy": "50", "oiUsd": "5000000"}
                    ],
                }
            ),
            _body({"code": "0", "data": [{"instId": "BTC-USDT-SWAP", "markPx": "100000"}]}),
        ]
    )
    [row] = okx_oi.parse(merged, {})
    assert row == pollers.Reading("BTC-USDT-SWAP", 100000.0, 50.0)


def test_merged_bodies_keep_every_list_under_its_own_key() -> None:
    # HTX's open interest answers {"data": [...]} and its tickers {"ticks": [...]}; Deribit's
    # summaries of each currency {"result": [...]}. Only "data" was kept: the tickers (HTX's
    # marks) and every Deribit row were dropped.
    merged = pollers.merge_bodies(
        [
            _body({"status": "ok", "data": [{"contract_code": "BTC-USDT"}], "ts": 1}),
            _body({"status": "ok", "ticks": [{"contract_code": "BTC-USDT"}], "ts": 2}),
            _body({"jsonrpc": "2.0", "result": [{"instrument_name": "BTC-PERPETUAL"}]}),
            _body({"jsonrpc": "2.0", "result": [{"instrument_name": "ETH-PERPETUAL"}]}),
        ]
    )
    assert json.loads(merged) == {
        "data": [{"contract_code": "BTC-USDT"}],
        "ticks": [{"contract_code": "BTC-USDT"}],
        "result": [{"instrument_name": "BTC-PERPETUAL"}, {"instrument_name": "ETH-PERPETUAL"}],
    }
    with pytest.raises(pollers.PollError, match="expected an object"):
        pollers.merge_bodies([_body({"data": []}), _body([1, 2])])


def test_bitmex_converts_contracts_with_the_catalog() -> None:
    catalog = {
        "XBTUSD": Instrument(exchange="bitmex", symbol="XBTUSD", kind="inverse", contract_size=1.0),
        "SOLUSDT": Instrument(
            exchange="bitmex", symbol="SOLUSDT", kind="linear", contract_size=1e-4
        ),
    }
    body = _body(
        [
            {"symbol": "XBTUSD", "openInterest": 574264600, "markPrice": 32184.89},
            {"symbol": "SOLUSDT", "openInterest": 1000000, "markPrice": 150.0},
            {"symbol": "UNKNOWN", "openInterest": 5, "markPrice": 1.0},
        ]
    )
    rows = {r.symbol: r for r in bitmex_oi.parse(body, catalog)}
    assert rows["XBTUSD"].open_interest == pytest.approx(574264600 / 32184.89)
    assert rows["SOLUSDT"].open_interest == pytest.approx(100.0)
    assert "UNKNOWN" not in rows


def test_dydx_hyperliquid_gate() -> None:
    dydx = _body(
        {"markets": {"BTC-USD": {"oraclePrice": "27752.92", "openInterest": "1891.473716288"}}}
    )
    assert dydx_oi.parse(dydx, {}) == [pollers.Reading("BTC-USD", 27752.92, 1891.473716288)]
    hyper = _body(
        [
            {"universe": [{"name": "BTC"}, {"name": "ETH"}]},
            [{"markPx": "100000", "openInterest": "12"}, {"markPx": "3000", "openInterest": "100"}],
        ]
    )
    assert [r.symbol for r in hyperliquid_oi.parse(hyper, {})] == ["BTC", "ETH"]
    gate_catalog = {
        "BTC_USDT": Instrument(
            exchange="gate", symbol="BTC_USDT", kind="linear", contract_size=0.0001
        )
    }
    gate = _body([{"name": "BTC_USDT", "mark_price": "26704.26", "position_size": 169531691}])
    [row] = gate_oi.parse(gate, gate_catalog)
    assert row.open_interest == pytest.approx(16953.1691)


@pytest.mark.parametrize("body", [b"<html>", b'{"result": {"list": 3}}'])
def test_unreadable_bodies_raise_poll_error(body: bytes) -> None:
    with pytest.raises(pollers.PollError, match="bybit open interest"):
        bybit_oi.parse(body, {})


def _poller(handler: httpx.MockTransport, sink: list[MarketSnapshot]) -> pollers.Poller:
    source = pollers.PollSource(
        "dydx_v4", ("https://dydx.test/markets",), dydx_oi.parse, interval=30.0
    )
    return pollers.Poller(
        source,
        httpx.AsyncClient(transport=handler),
        sink.extend,
        lambda exchange, symbol: symbol.replace("-USD", "-PERP"),
        {},
        clock=lambda: 1_700_000_000.0,
    )


async def test_poller_delivers_snapshots_with_usd_open_interest() -> None:
    body = _body({"markets": {"BTC-USD": {"oraclePrice": "100000", "openInterest": "2"}}})
    got: list[MarketSnapshot] = []
    poller = _poller(httpx.MockTransport(lambda r: httpx.Response(200, content=body)), got)
    assert await poller.poll_once() == 30.0
    assert got == [
        MarketSnapshot(
            exchange="dydx_v4",
            symbol="BTC-USD",
            market="BTC-PERP",
            ts=1_700_000_000_000,
            mark_price=100000.0,
            open_interest=2.0,
            open_interest_usd=200000.0,
        )
    ]


async def test_poller_waits_as_long_as_a_rate_limit_asks() -> None:
    got: list[MarketSnapshot] = []
    limited = httpx.MockTransport(lambda r: httpx.Response(429, headers={"Retry-After": "120"}))
    poller = _poller(limited, got)
    assert await poller.poll_once() == 120.0
    assert poller.stats.errors == {"rate_limited": 1}
    assert got == []


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        # An HTTP date is as valid as seconds (RFC 9110): it was read as garbage and the poller
        # came back after its default 30 s, inside the venue's window.
        (lambda now: email.utils.formatdate(now + 300, usegmt=True), 300.0),
        # A garbled, huge figure parked the poller for three thousand years; a day at most.
        (lambda now: "99999999999", 86_400.0),
        (lambda now: "inf", 60.0),  # not a number of seconds: the default (2 polls), not for ever
    ],
)
async def test_poller_reads_retry_after_as_a_date_or_seconds_within_a_day(
    header: Callable[[float], str], expected: float
) -> None:
    value = header(time.time())
    limited = httpx.MockTransport(lambda r: httpx.Response(429, headers={"Retry-After": value}))
    poller = _poller(limited, [])
    assert await poller.poll_once() == pytest.approx(expected, abs=2.0)


async def test_poller_survives_server_errors_and_garbage() -> None:
    got: list[MarketSnapshot] = []
    answers = iter([httpx.Response(503), httpx.Response(200, content=b"garbage")])
    poller = _poller(httpx.MockTransport(lambda r: next(answers)), got)
    assert await poller.poll_once() == 30.0
    assert await poller.poll_once() == 30.0
    assert poller.stats.errors == {"HTTPStatusError": 1, "PollError": 1}


async def test_binance_poller_reads_marks_then_open_interest_per_symbol() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("premiumIndex"):
            return httpx.Response(
                200, content=_body([{"symbol": "BTCUSDT", "markPrice": "11793.63"}])
            )
        assert request.url.params["symbol"] == "BTCUSDT"
        return httpx.Response(
            200, content=_body({"openInterest": "10659.509", "symbol": "BTCUSDT", "time": 1})
        )

    got: list[MarketSnapshot] = []
    poller = pollers.Poller(
        binance_oi.source(symbols=("BTCUSDT", "NOTLISTED"), pause=0),
        httpx.AsyncClient(transport=httpx.MockTransport(answer)),
        got.extend,
        lambda exchange, symbol: "BTC-PERP",
        {},
    )
    await poller.poll_once()
    [snapshot] = got
    assert snapshot.open_interest == 10659.509
    assert snapshot.open_interest_usd == pytest.approx(10659.509 * 11793.63)


async def test_a_paged_source_is_polled_to_its_last_page() -> None:
    # Gate's contract list comes 100 rows a page: open interest of the contracts past the
    # first page was never read.
    def contract(n: int) -> dict[str, object]:
        return {"name": f"C{n}_USDT", "mark_price": "2", "position_size": 10}

    pages = {
        "0": _body([contract(n) for n in range(100)]),
        "100": _body([contract(n) for n in range(100, 130)]),
    }

    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=pages[request.url.params.get("offset", "0")])

    instruments = {
        f"C{n}_USDT": Instrument(
            exchange="gate", symbol=f"C{n}_USDT", kind="linear", contract_size=1
        )
        for n in range(130)
    }
    sink: list[MarketSnapshot] = []
    [source] = gate_oi.SOURCES
    poller = pollers.Poller(
        source,
        httpx.AsyncClient(transport=httpx.MockTransport(answer)),
        sink.extend,
        lambda exchange, symbol: symbol.replace("_USDT", "-PERP"),
        instruments,
    )
    await poller.poll_once()
    assert len(sink) == 130
    assert sink[-1].market == "C129-PERP"
