"""Instrument catalogs: REST parsers on documented responses, refresh, cache, offline start."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import httpx
import pytest

from purpleflea.ingest import catalog
from purpleflea.model import Instrument
from purpleflea.venues import bitmex
from purpleflea.venues.binance import catalog as binance_catalog
from purpleflea.venues.bitmex import catalog as bitmex_catalog
from purpleflea.venues.bybit import catalog as bybit_catalog
from purpleflea.venues.deribit import catalog as deribit_catalog
from purpleflea.venues.dydx import catalog as dydx_catalog
from purpleflea.venues.gate import catalog as gate_catalog
from purpleflea.venues.htx import catalog as htx_catalog
from purpleflea.venues.kraken import catalog as kraken_catalog
from purpleflea.venues.okx import catalog as okx_catalog


def test_binance_coinm_contract_size_is_usd_per_contract() -> None:
    body = json.dumps(
        {
            "symbols": [
                {"symbol": "BTCUSD_PERP", "contractSize": 100},
                {"symbol": "ETHUSD_PERP", "contractSize": 10},
            ]
        }
    ).encode()
    rows = {i.symbol: i for i in binance_catalog.parse_coinm(body)}
    assert rows["BTCUSD_PERP"] == Instrument(
        exchange="binance_coinm", symbol="BTCUSD_PERP", kind="inverse", contract_size=100.0
    )
    assert rows["ETHUSD_PERP"].contract_size == 10.0


def test_okx_contract_value_times_multiplier_by_contract_type() -> None:
    body = json.dumps(
        {
            "code": "0",
            "data": [
                {"instId": "BTC-USDT-SWAP", "ctVal": "0.01", "ctMult": "1", "ctType": "linear"},
                {"instId": "BTC-USD-SWAP", "ctVal": "100", "ctMult": "1", "ctType": "inverse"},
                {"instId": "X-USDT-SWAP", "ctVal": "", "ctMult": "1", "ctType": "linear"},
            ],
        }
    ).encode()
    rows = {i.symbol: i for i in okx_catalog.parse(body)}
    assert rows["BTC-USDT-SWAP"].kind == "linear"
    assert rows["BTC-USDT-SWAP"].contract_size == 0.01
    assert rows["BTC-USD-SWAP"].kind == "inverse"
    assert rows["BTC-USD-SWAP"].contract_size == 100.0
    assert "X-USDT-SWAP" not in rows  # no usable size: left out, not guessed


def test_bitmex_inverse_quanto_and_linear() -> None:
    body = json.dumps(
        [
            {"symbol": "XBTUSD", "isInverse": True, "isQuanto": False, "multiplier": -100000000},
            {"symbol": "ETHUSD", "isInverse": False, "isQuanto": True, "multiplier": 100},
            {
                "symbol": "SOLUSDT",
                "isInverse": False,
                "isQuanto": False,
                "underlyingToPositionMultiplier": 10000,
            },
        ]
    ).encode()
    rows = {i.symbol: i for i in bitmex_catalog.parse(body)}
    assert (rows["XBTUSD"].kind, rows["XBTUSD"].contract_size) == ("inverse", 1.0)
    assert (rows["ETHUSD"].kind, rows["ETHUSD"].contract_size) == ("quanto", pytest.approx(1e-6))
    assert (rows["SOLUSDT"].kind, rows["SOLUSDT"].contract_size) == ("linear", pytest.approx(1e-4))
    assert rows["ETHUSD"].settle_usd is None  # no XBTUSD mark in this list: stays unsized


def test_bitmex_quanto_is_priced_in_usd_through_the_xbtusd_mark() -> None:
    body = json.dumps(
        [
            {"symbol": "XBTUSD", "isInverse": True, "multiplier": -100000000, "markPrice": 60000},
            {"symbol": "ETHUSD", "isInverse": False, "isQuanto": True, "multiplier": 100},
        ]
    ).encode()
    rows = {i.symbol: i for i in bitmex_catalog.parse(body)}
    assert rows["ETHUSD"].settle_usd == 60_000.0
    # An ETHUSD liquidation of 1,000 contracts at $3,000: 1e-6 XBT x 3,000 x 1,000 = 3 XBT.
    frame = json.dumps(
        {
            "table": "liquidation",
            "action": "insert",
            "data": [
                {
                    "orderID": "o-1",
                    "symbol": "ETHUSD",
                    "side": "Sell",
                    "price": 3000,
                    "leavesQty": 1000,
                }
            ],
        }
    ).encode()
    [event] = bitmex.normalize(frame, rows)
    assert event.size_usd == pytest.approx(3 * 60_000.0)
    assert event.side == "long"


def test_kraken_gate_htx() -> None:
    kraken = json.dumps(
        {
            "instruments": [
                {"symbol": "PI_XBTUSD", "contractSize": 1},
                {"symbol": "PF_XBTUSD", "contractSize": 1},
            ]
        }
    ).encode()
    assert {(i.symbol, i.kind) for i in kraken_catalog.parse(kraken)} == {
        ("PI_XBTUSD", "inverse"),
        ("PF_XBTUSD", "linear"),
    }
    gate = json.dumps(
        [
            {"name": "BTC_USDT", "quanto_multiplier": "0.0001", "type": "direct"},
            {"name": "BTC_USD", "type": "inverse"},
        ]
    ).encode()
    rows = {i.symbol: i for i in gate_catalog.parse(gate)}
    assert rows["BTC_USDT"].contract_size == 0.0001
    assert (rows["BTC_USD"].kind, rows["BTC_USD"].contract_size) == ("inverse", 1.0)
    htx = json.dumps(
        {
            "status": "ok",
            "data": [
                {"contract_code": "BTC-USDT", "contract_size": 0.001},
                {"contract_code": "ETH-USD", "contract_size": 10},
            ],
        }
    ).encode()
    rows = {i.symbol: i for i in htx_catalog.parse(htx)}
    assert (rows["BTC-USDT"].kind, rows["BTC-USDT"].contract_size) == ("linear", 0.001)
    assert (rows["ETH-USD"].kind, rows["ETH-USD"].contract_size) == ("inverse", 10.0)


@pytest.mark.parametrize("body", [b"not json", b'{"data": 5}', b'{"data": [1, 2]}'])
def test_unreadable_bodies_raise_catalog_error(body: bytes) -> None:
    with pytest.raises(catalog.CatalogError, match="okx instruments"):
        okx_catalog.parse(body)


def test_bundled_snapshot_covers_the_documented_contracts() -> None:
    catalogs = catalog.Catalogs()
    assert catalogs.get("okx")["BTC-USDT-SWAP"].contract_size == 0.01
    assert catalogs.get("htx")["BTC-USD"].kind == "inverse"
    assert catalogs.get("bitmex")["XBTUSD"].contract_size == 1.0
    assert len(catalogs.get("nobody")) == 0


def _transport(answers: dict[str, bytes | int]) -> httpx.MockTransport:
    def handle(request: httpx.Request) -> httpx.Response:
        answer = answers.get(str(request.url), 404)
        if isinstance(answer, int):
            return httpx.Response(answer)
        return httpx.Response(200, content=answer)

    return httpx.MockTransport(handle)


async def test_refresh_replaces_a_catalog_in_place_and_caches_it(tmp_path: Path) -> None:
    cache = tmp_path / "instruments.json"
    catalogs = catalog.Catalogs(cache_path=cache)
    held = catalogs.get("okx")  # what a feed's normalizer holds
    okx = json.dumps(
        {"data": [{"instId": "SOL-USDT-SWAP", "ctVal": "1", "ctMult": "1", "ctType": "linear"}]}
    ).encode()
    sources = (
        catalog.Source("okx", "https://okx.test/swap", okx_catalog.parse),
        catalog.Source("gate", "https://gate.test/usdt", gate_catalog.parse),
    )
    async with httpx.AsyncClient(transport=_transport({"https://okx.test/swap": okx})) as client:
        errors = await catalogs.refresh(client, sources)
    assert set(errors) == {"https://gate.test/usdt"}
    assert "404" in errors["https://gate.test/usdt"]
    assert held["SOL-USDT-SWAP"].contract_size == 1.0
    assert "BTC-USDT-SWAP" not in held  # replaced by the exchange's full current list
    assert catalogs.get("gate")["BTC_USDT"].contract_size == 0.0001  # failed: kept as it was
    # A later start (offline) loads what was fetched.
    assert catalog.Catalogs(cache_path=cache).get("okx")["SOL-USDT-SWAP"].contract_size == 1.0


async def test_an_exchange_with_one_failed_source_keeps_its_catalog(tmp_path: Path) -> None:
    catalogs = catalog.Catalogs()
    gate = json.dumps([{"name": "NEW_USDT", "quanto_multiplier": "1", "type": "direct"}]).encode()
    sources = (
        catalog.Source("gate", "https://gate.test/usdt", gate_catalog.parse),
        catalog.Source("gate", "https://gate.test/btc", gate_catalog.parse),
    )
    async with httpx.AsyncClient(
        transport=_transport({"https://gate.test/usdt": gate, "https://gate.test/btc": 503})
    ) as client:
        await catalogs.refresh(client, sources)
    assert "NEW_USDT" not in catalogs.get("gate")
    assert "BTC_USDT" in catalogs.get("gate")


def test_symbol_lists_of_per_instrument_feeds() -> None:
    bybit = json.dumps(
        {
            "result": {
                "list": [
                    {"symbol": "BTCUSDT", "contractType": "LinearPerpetual", "status": "Trading"},
                    {"symbol": "BTCUSD", "contractType": "InversePerpetual", "status": "Trading"},
                    {"symbol": "OLDUSDT", "contractType": "LinearPerpetual", "status": "Closed"},
                ]
            }
        }
    ).encode()
    assert [(i.symbol, i.kind) for i in bybit_catalog.parse(bybit)] == [
        ("BTCUSDT", "linear"),
        ("BTCUSD", "inverse"),
    ]
    deribit = json.dumps(
        {
            "result": [
                {
                    "instrument_name": "BTC-PERPETUAL",
                    "settlement_period": "perpetual",
                    "contract_size": 10,
                    "instrument_type": "reversed",
                },
                {
                    "instrument_name": "SOL_USDC-PERPETUAL",
                    "settlement_period": "perpetual",
                    "contract_size": 0.1,
                    "instrument_type": "linear",
                },
                {
                    "instrument_name": "BTC-27DEC24",
                    "settlement_period": "month",
                    "contract_size": 10,
                },
            ]
        }
    ).encode()
    assert [(i.symbol, i.kind, i.contract_size) for i in deribit_catalog.parse(deribit)] == [
        ("BTC-PERPETUAL", "inverse", 10.0),
        ("SOL_USDC-PERPETUAL", "linear", 0.1),
        ("BTC-27DEC24", "inverse", 10.0),
    ]
    dydx = json.dumps(
        {"markets": {"BTC-USD": {"status": "ACTIVE"}, "LUNA-USD": {"status": "FINAL_SETTLEMENT"}}}
    ).encode()
    assert [i.symbol for i in dydx_catalog.parse(dydx)] == ["BTC-USD"]
    with pytest.raises(catalog.CatalogError, match=r"bybit instruments: result\.list"):
        bybit_catalog.parse(b'{"result": {}}')


def _bybit_page(symbols: list[str], cursor: str) -> bytes:
    rows = [{"symbol": s, "contractType": "LinearPerpetual", "status": "Trading"} for s in symbols]
    return json.dumps({"result": {"list": rows, "nextPageCursor": cursor}}).encode()


async def test_a_paged_list_is_read_to_its_end() -> None:
    # Bybit lists more linear symbols than one page holds: the cursor of each page is asked
    # for until a page comes back empty (its one-row examples still carry a cursor).
    url = "https://bybit.test/instruments?limit=2&category=linear"
    answers: dict[str, bytes | int] = {
        url: _bybit_page(["BTCUSDT", "ETHUSDT"], "p%3D2"),
        f"{url}&cursor=p%3D2": _bybit_page(["SOLUSDT"], "p%3D3"),
        f"{url}&cursor=p%3D3": _bybit_page([], ""),
    }
    catalogs = catalog.Catalogs()
    source = catalog.Source("bybit", url, bybit_catalog.parse, bybit_catalog.next_page)
    async with httpx.AsyncClient(transport=_transport(answers)) as client:
        assert await catalogs.refresh(client, (source,)) == {}
    assert sorted(catalogs.get("bybit")) == ["BTCUSDT", "ETHUSDT", "SOLUSDT"]


async def test_a_failed_later_page_fails_the_source() -> None:
    # Half a list would drop the instruments of the pages missed: the catalog is kept.
    url = "https://bybit.test/instruments?limit=2&category=linear"
    answers: dict[str, bytes | int] = {url: _bybit_page(["NEWUSDT"], "p%3D2")}
    catalogs = catalog.Catalogs()
    source = catalog.Source("bybit", url, bybit_catalog.parse, bybit_catalog.next_page)
    async with httpx.AsyncClient(transport=_transport(answers)) as client:
        errors = await catalogs.refresh(client, (source,))
    assert "404" in errors[url]
    assert "NEWUSDT" not in catalogs.get("bybit")
    assert "BTCUSDT" in catalogs.get("bybit")  # the bundled list, kept


async def test_a_contract_value_changed_mid_session_is_a_warning_naming_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # OKX adjusts a swap's contract value (ctVal) on notice; no liquidation push carries it,
    # so the events between the change and the next hourly fetch are sized with the old one.
    # Before, the fetch replaced the row without a word. The first fetch only corrects the
    # bundled snapshot (INFO), a later one is the venue's change (WARNING).
    def answer(ct_val: str) -> bytes:
        row = {"instId": "XRP-USDT-SWAP", "ctVal": ct_val, "ctMult": "1", "ctType": "linear"}
        return json.dumps({"data": [row]}).encode()

    catalogs = catalog.Catalogs()
    catalogs.get("okx").replace({})  # nothing bundled: the first fetch lists it anew
    sources = (catalog.Source("okx", "https://okx.test/swap", okx_catalog.parse),)
    caplog.set_level(logging.INFO, logger="purpleflea.ingest.catalog")
    for ct_val in ("100", "100", "10"):
        transport = _transport({"https://okx.test/swap": answer(ct_val)})
        async with httpx.AsyncClient(transport=transport) as client:
            assert await catalogs.refresh(client, sources) == {}
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == [
        "instrument catalog: okx changed the contract size of 1 contract(s) since the last "
        "fetch: XRP-USDT-SWAP 100 linear -> 10 linear; their liquidations received since then "
        "were sized with the old one"
    ]
    assert catalogs.get("okx")["XRP-USDT-SWAP"].contract_size == 10.0


async def test_a_first_fetch_correcting_the_bundled_snapshot_is_no_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    catalogs = catalog.Catalogs()
    catalogs.get("okx").replace(
        {
            "XRP-USDT-SWAP": Instrument(
                exchange="okx", symbol="XRP-USDT-SWAP", kind="linear", contract_size=100.0
            )
        }
    )
    row = {"instId": "XRP-USDT-SWAP", "ctVal": "10", "ctMult": "1", "ctType": "linear"}
    sources = (catalog.Source("okx", "https://okx.test/swap", okx_catalog.parse),)
    caplog.set_level(logging.INFO, logger="purpleflea.ingest.catalog")
    transport = _transport({"https://okx.test/swap": json.dumps({"data": [row]}).encode()})
    async with httpx.AsyncClient(transport=transport) as client:
        assert await catalogs.refresh(client, sources) == {}
    levels = [(r.levelno, r.getMessage()) for r in caplog.records]
    assert [level for level, _ in levels] == [logging.INFO]
    assert "XRP-USDT-SWAP 100 linear -> 10 linear" in levels[0][1]
