"""Injection-shaped values in every filter: never a 5xx, never a leak, results still correct.

Filters reach SQL only as bound parameters (and the few words spliced into SQL, such as
``group_by``, come from a fixed list), so a hostile value is at worst a market nobody trades.
These tests hold the server to that from the outside.
"""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
from websockets.asyncio.client import connect

from purpleflea.server.app import EXCHANGES
from tests.reliability.conftest import SEEDED, Running, venue_event

pytestmark = pytest.mark.asyncio(loop_scope="module")

PAYLOADS = [
    "' OR '1'='1",
    "BTC-PERP' OR '1'='1' --",
    "'; DROP TABLE liquidations; --",
    "1; DELETE FROM api_keys",
    '" OR ""="',
    "BTC-PERP') UNION SELECT key_id, hash, account, name, 1, 1, 1, 1, 1, 1, 1, 1 FROM api_keys --",
    "%' OR market LIKE '%",
    "1 OR 1=1",
    "0x7fffffff",
    "1e309",
    "-1",
    "NaN",
    "9" * 40,
    "BTC-PERP\u0000",
    "$(rm -rf /)",
    "{{7*7}}",
    "<script>alert(1)</script>",
    "market) OR (1=1",
    "A" * 65,
    "ETH-PERP,' OR 1=1 --",
]

#: (route, parameter) for every filter the REST API reads.
FILTERS = (
    [
        ("/v1/liquidations", name)
        for name in ("market", "exchange", "side", "min_usd", "start", "end", "cursor", "limit")
    ]
    + [
        ("/v1/liquidations/aggregate", name)
        for name in (
            "market",
            "exchange",
            "side",
            "min_usd",
            "start",
            "end",
            "interval",
            "group_by",
        )
    ]
    + [("/v1/cascades", name) for name in ("market", "status", "limit")]
)

_SEEDED_MARKETS = {market for market, *_ in SEEDED}


def _requested(value: str) -> set[str]:
    return {part.strip().upper() for part in value.split(",") if part.strip()}


async def _store_size(live: Running) -> int:
    return len(await live.server.store.since(0, 10_000))


@pytest.mark.parametrize(("route", "name"), FILTERS)
async def test_injection_shaped_filter_values_are_answered_safely(
    shared_server: Running, route: str, name: str
) -> None:
    stored = await _store_size(shared_server)
    async with httpx.AsyncClient(
        base_url=shared_server.url, headers={"X-API-Key": shared_server.key}
    ) as http:
        for payload in PAYLOADS:
            response = await http.get(route, params={name: payload})
            assert response.status_code in (200, 400), (name, payload, response.text)
            assert shared_server.key not in response.text
            body = response.json()
            if response.status_code == 400:
                assert set(body) == {"error"}
                assert body["error"]["code"] == "bad_request"
                assert name in body["error"]["message"]  # the error names the parameter
                continue
            if name in ("exchange", "side", "interval", "group_by", "status"):
                pytest.fail(f"{route}?{name}={payload!r} was accepted: {body}")
            if route == "/v1/liquidations" and name == "market":
                markets = {event["market"] for event in body["events"]}
                assert markets <= _requested(payload) & _SEEDED_MARKETS, (payload, markets)
            if route == "/v1/liquidations/aggregate" and name == "market":
                groups = {bucket["group"] for bucket in body["buckets"]}
                assert groups <= _requested(payload), (payload, groups)
    # Nothing was dropped, deleted or added, and keys still work.
    assert await _store_size(shared_server) == stored
    assert shared_server.server.keys.verify(shared_server.key) is not None


async def test_valid_values_next_to_hostile_ones_still_filter_exactly(
    shared_server: Running,
) -> None:
    async with httpx.AsyncClient(
        base_url=shared_server.url, headers={"X-API-Key": shared_server.key}
    ) as http:
        # Shaped as a market name (BASE-PERP), so it reaches the query; "' OR '1'='1" as it is
        # is not a market name and is answered 400.
        response = await http.get(
            "/v1/liquidations", params=[("market", "ETH-PERP"), ("market", "'OR'1'='1'-PERP")]
        )
    assert response.status_code == 200
    events = response.json()["events"]
    assert {120_000.0, 900_000.0} <= {e["size_usd"] for e in events}
    assert {e["market"] for e in events} == {"ETH-PERP"}


async def test_unknown_exchange_list_is_the_known_one(shared_server: Running) -> None:
    async with httpx.AsyncClient(
        base_url=shared_server.url, headers={"X-API-Key": shared_server.key}
    ) as http:
        response = await http.get("/v1/liquidations", params={"exchange": "' OR 1=1 --"})
    assert response.status_code == 400
    assert all(exchange in response.json()["error"]["message"] for exchange in EXCHANGES)


@pytest.mark.parametrize("payload", PAYLOADS[:8])
async def test_injection_shaped_stream_filters_match_nothing_extra(
    shared_server: Running, payload: str
) -> None:
    headers = {"X-API-Key": shared_server.key}
    async with connect(shared_server.ws_url, additional_headers=headers) as ws:
        await ws.send(json.dumps({"op": "subscribe", "markets": [payload, "ETH-PERP"]}))
        first = json.loads(await ws.recv())
        if first["type"] == "error":  # refused outright is fine, as long as it says why
            assert first["code"] == "bad_subscription"
            return
        assert first["type"] == "subscribed"
        await shared_server.push(venue_event(market="BTC-PERP"), venue_event(market="ETH-PERP"))

        async def first_liquidation() -> dict[str, object]:
            while True:
                frame = json.loads(await ws.recv())
                if frame["type"] == "liquidation":
                    data: dict[str, object] = frame["data"]
                    return data

        event = await asyncio.wait_for(first_liquidation(), 5)
        assert event["market"] == "ETH-PERP"


@pytest.mark.parametrize("name", ["markets", "exchanges", "sides", "min_usd", "since_seq"])
async def test_injection_shaped_sse_query_values_get_400_or_a_stream(
    shared_server: Running, name: str
) -> None:
    async with httpx.AsyncClient(
        base_url=shared_server.url, headers={"X-API-Key": shared_server.key}
    ) as http:
        for payload in PAYLOADS:
            async with http.stream("GET", "/v1/stream/sse", params={name: payload}) as response:
                assert response.status_code in (200, 400), (name, payload)
                if response.status_code == 400:
                    body = json.loads(await response.aread())
                    assert body["error"]["code"] == "bad_subscription"
                elif name == "min_usd":  # only a finite number >= 0 may pass
                    assert float(payload) >= 0, payload
                else:
                    assert name == "markets", (name, payload)  # and free text
