"""A venue's error answered with HTTP 200 is an error, in the venue's words, never "no rows".

OKX, Bybit, HTX and Kraken Futures answer many errors with HTTP 200 and the error inside the
body: OKX ``{"code":"50011","msg":..,"data":[]}`` (okx.com/docs-v5, "Error Code"), Bybit
``{"retCode":10006,"retMsg":"Too many visits!","result":{},..}``
(bybit-exchange.github.io/docs/v5/error), HTX ``{"status":"error","err_code":..,
"err_msg":..}`` (the envelope of its futures and swap answers), Kraken Futures
``{"result":"error","error":"apiLimitExceeded",..}``. Read as a list of nothing, an instrument
list dropped the contracts it should have listed, and an open-interest poll merged with a
good body was counted as a good poll of no readings. Each is now the poll's or the refresh's
error, naming the venue's code and message.
"""

from __future__ import annotations

import dataclasses
import json

import httpx

from purpleflea.ingest import catalog, pollers
from purpleflea.model import MarketSnapshot
from purpleflea.venues.binance import open_interest as binance_oi
from purpleflea.venues.bybit import catalog as bybit_catalog
from purpleflea.venues.bybit import open_interest as bybit_oi
from purpleflea.venues.htx import open_interest as htx_oi
from purpleflea.venues.hyperliquid import open_interest as hyperliquid_oi
from purpleflea.venues.kraken import open_interest as kraken_oi
from purpleflea.venues.okx import catalog as okx_catalog
from purpleflea.venues.okx import open_interest as okx_oi


def _json(value: object) -> bytes:
    return json.dumps(value).encode()


def _answering(answers: dict[str, bytes]) -> httpx.AsyncClient:
    """A client whose every answer is HTTP 200 with the body for its URL (404 otherwise)."""

    def handle(request: httpx.Request) -> httpx.Response:
        body = answers.get(str(request.url))
        return httpx.Response(404) if body is None else httpx.Response(200, content=body)

    return httpx.AsyncClient(transport=httpx.MockTransport(handle))


OKX_RATE_LIMITED = _json(
    {
        "code": "50011",
        "msg": "Rate limit reached. Please refer to API documentation and throttle requests "
        "accordingly",
        "data": [],
    }
)
SWAP_URL, FUTURES_URL = (source.url for source in okx_catalog.SOURCES)
SWAP = _json(
    {
        "code": "0",
        "msg": "",
        "data": [{"instId": "SOL-USDT-SWAP", "ctVal": "1", "ctMult": "1", "ctType": "linear"}],
    }
)
FUTURE = {"instId": "BTC-USD-261225", "ctVal": "100", "ctMult": "1", "ctType": "inverse"}


async def test_an_okx_error_answered_with_200_keeps_the_contracts_it_did_not_list() -> None:
    catalogs = catalog.Catalogs()
    futures = _json({"code": "0", "msg": "", "data": [FUTURE]})
    async with _answering({SWAP_URL: SWAP, FUTURES_URL: futures}) as client:
        assert await catalogs.refresh(client, okx_catalog.SOURCES) == {}
    assert catalogs.get("okx")["BTC-USD-261225"].contract_size == 100.0
    # The next refresh's futures list is refused for the rate limit. Before, its empty
    # ``data`` was a list of no future: the catalog was replaced by the swaps alone and every
    # dated future's liquidations went unsized.
    async with _answering({SWAP_URL: SWAP, FUTURES_URL: OKX_RATE_LIMITED}) as client:
        errors = await catalogs.refresh(client, okx_catalog.SOURCES)
    assert list(errors) == [FUTURES_URL]
    assert "code 50011: Rate limit reached" in errors[FUTURES_URL]
    assert catalogs.get("okx")["BTC-USD-261225"].contract_size == 100.0


async def test_a_bybit_retcode_is_the_refresh_error_in_bybit_s_words() -> None:
    too_many = _json(
        {"retCode": 10006, "retMsg": "Too many visits!", "result": {}, "retExtInfo": {}}
    )
    linear, inverse, prelaunch = (source.url for source in bybit_catalog.SOURCES)
    listed = _json(
        {
            "retCode": 0,
            "retMsg": "OK",
            "result": {
                "category": "linear",
                "list": [
                    {"symbol": "BTCUSDT", "contractType": "LinearPerpetual", "status": "Trading"}
                ],
                "nextPageCursor": "",
            },
        }
    )
    catalogs = catalog.Catalogs()
    async with _answering({linear: listed, inverse: too_many, prelaunch: listed}) as client:
        errors = await catalogs.refresh(client, bybit_catalog.SOURCES)
    assert list(errors) == [inverse]
    assert "retCode 10006: Too many visits!" in errors[inverse]
    assert "BTCUSD" in catalogs.get("bybit")  # the inverse contracts stay listed


def _poller(source: pollers.PollSource, client: httpx.AsyncClient) -> pollers.Poller:
    got: list[MarketSnapshot] = []
    return pollers.Poller(
        source, client, got.extend, lambda exchange, symbol: "BTC-PERP", {}, clock=lambda: 1e9
    )


async def test_an_okx_open_interest_error_beside_good_marks_is_a_failed_poll() -> None:
    [source] = okx_oi.SOURCES
    oi_url, marks_url = source.urls
    marks = _json({"code": "0", "data": [{"instId": "BTC-USDT-SWAP", "markPx": "100000"}]})
    async with _answering({oi_url: OKX_RATE_LIMITED, marks_url: marks}) as client:
        poller = _poller(source, client)
        await poller.poll_once()
    # Before: merged into the marks' list, the error was a good poll of no reading.
    assert poller.stats.polls == 0
    assert poller.stats.errors == {"PollError": 1}
    assert "code 50011: Rate limit reached" in poller.stats.last_error


async def test_an_htx_status_error_beside_good_tickers_is_a_failed_poll() -> None:
    source = htx_oi.SOURCES[0]
    oi_url, tickers_url = source.urls
    refused = _json(
        {"status": "error", "err_code": 1041, "err_msg": "Request limit exceeded", "ts": 1}
    )
    tickers = _json({"status": "ok", "ticks": [{"contract_code": "BTC-USDT", "close": "1"}]})
    async with _answering({oi_url: refused, tickers_url: tickers}) as client:
        poller = _poller(source, client)
        await poller.poll_once()
    assert poller.stats.polls == 0
    assert poller.stats.errors == {"PollError": 1}
    assert "status error 1041: Request limit exceeded" in poller.stats.last_error


async def test_bybit_and_kraken_poll_errors_carry_the_venue_s_words() -> None:
    bybit = bybit_oi.SOURCES[0]
    kraken = kraken_oi.SOURCES[0]
    answers = {
        bybit.urls[0]: _json(
            {"retCode": 10006, "retMsg": "Too many visits!", "result": {}, "retExtInfo": {}}
        ),
        kraken.urls[0]: _json(
            {"result": "error", "error": "apiLimitExceeded", "serverTime": "2026-12-07T09:00:00Z"}
        ),
    }
    async with _answering(answers) as client:
        for source, said in (
            (bybit, "retCode 10006: Too many visits!"),
            (kraken, "result error: apiLimitExceeded"),
        ):
            poller = _poller(source, client)
            await poller.poll_once()
            assert poller.stats.errors == {"PollError": 1}, source.exchange
            assert said in poller.stats.last_error, poller.stats.last_error


def test_good_answers_are_no_error() -> None:
    assert okx_catalog.error_answer(SWAP) is None
    assert okx_catalog.error_answer(b'{"code":0,"data":[]}') is None
    assert okx_catalog.error_answer(b"not json") is None  # the parser says what is wrong
    assert bybit_catalog.error_answer(b'{"retCode":0,"retMsg":"OK","result":{}}') is None
    assert htx_oi.error_answer(b'{"status":"ok","data":[]}') is None
    assert kraken_oi.error_answer(b'{"result":"success","tickers":[]}') is None
    # Gate's contract list is a bare JSON list: no envelope, no error inside.
    assert okx_catalog.error_answer(b"[]") is None


def _coded(body: bytes) -> str | None:
    """An ``error=`` reader for the tests below: a body naming code 50011 is that error."""
    return "code 50011: venue busy" if b"50011" in body else None


async def test_a_per_symbol_answer_is_checked_for_the_venue_s_error_too() -> None:
    # PollSource's error= reads every body (the template combines it with per_symbol and
    # per_scope): the per-symbol answers were never shown to it, so an error beside a zero
    # was delivered as a reading of no open interest.
    source = dataclasses.replace(binance_oi.source(symbols=("BTCUSDT",), pause=0), error=_coded)

    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("premiumIndex"):
            return httpx.Response(200, content=_json([{"symbol": "BTCUSDT", "markPrice": "1"}]))
        said = {"code": "50011", "msg": "Rate limit reached", "openInterest": "0"}
        return httpx.Response(200, content=_json(said | {"symbol": "BTCUSDT", "time": 1}))

    got: list[MarketSnapshot] = []
    async with httpx.AsyncClient(transport=httpx.MockTransport(answer)) as client:
        poller = pollers.Poller(source, client, got.extend, lambda e, s: "BTC-PERP", {})
        await poller.poll_once()
    assert got == []
    assert poller.stats.errors == {"PollError": 1}
    assert "code 50011: venue busy" in poller.stats.last_error


async def test_a_per_scope_answer_is_checked_for_the_venue_s_error_too() -> None:
    [hyperliquid] = hyperliquid_oi.SOURCES
    assert hyperliquid.per_scope is not None
    source = dataclasses.replace(
        hyperliquid,
        urls=("https://venue.example/info",),
        per_scope=dataclasses.replace(hyperliquid.per_scope, pause=0),
        error=_coded,
    )

    def answer(request: httpx.Request) -> httpx.Response:
        if json.loads(request.content)["type"] == "perpDexs":
            return httpx.Response(200, json=[None])
        # The dex's answer: no coin listed, and the venue's error beside it.
        return httpx.Response(200, json=[{"universe": [], "code": 50011, "msg": "busy"}, []])

    got: list[MarketSnapshot] = []
    async with httpx.AsyncClient(transport=httpx.MockTransport(answer)) as client:
        poller = pollers.Poller(source, client, got.extend, lambda e, s: "BTC-PERP", {})
        await poller.poll_once()
    assert poller.stats.errors == {"PollError": 1}
    assert "code 50011: venue busy" in poller.stats.last_error
    assert poller.stats.polls == 0  # not a good poll of no reading
