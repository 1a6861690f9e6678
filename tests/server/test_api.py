"""The REST API: history with filters and cursors, aggregates, markets, health, metrics."""

from __future__ import annotations

import asyncio
import json
import re
import socket
from pathlib import Path
from typing import Any

import httpx
import pytest

from purpleflea.clock import now_ms
from purpleflea.model import MarketSnapshot
from purpleflea.server import api
from purpleflea.server.api import sample_value
from purpleflea.server.filters import BadSubscription, parse_filter
from purpleflea.server.pipeline_metrics import FAMILIES
from purpleflea.store.base import StoreUnavailable
from purpleflea.venues import registry
from tests.server.conftest import T0, Running, venue_event


async def test_history_filters_and_cursor_pages(live: Running) -> None:
    await live.push(
        *[venue_event(market="BTC-PERP", size_usd=1_000.0 * (i + 1)) for i in range(25)],
        *[venue_event(market="ETH-PERP", side="short", exchange="bybit") for _ in range(5)],
    )
    headers = {"Authorization": f"Bearer {live.key}"}
    async with httpx.AsyncClient(base_url=live.url, headers=headers) as http:
        first = (
            await http.get("/v1/liquidations", params={"market": "BTC-PERP", "limit": 10})
        ).json()
        assert [e["market"] for e in first["events"]] == ["BTC-PERP"] * 10
        seqs = [e["seq"] for e in first["events"]]
        assert seqs == sorted(seqs, reverse=True)
        pages = [first]
        while pages[-1]["next_cursor"] is not None:
            params = {"market": "BTC-PERP", "limit": 10, "cursor": pages[-1]["next_cursor"]}
            pages.append((await http.get("/v1/liquidations", params=params)).json())
        all_seqs = [e["seq"] for p in pages for e in p["events"]]
        assert len(all_seqs) == 25 == len(set(all_seqs))
        big = (
            await http.get("/v1/liquidations", params={"min_usd": 20_000, "market": "BTC-PERP"})
        ).json()
        assert {e["size_usd"] for e in big["events"]} == {1_000.0 * n for n in range(20, 26)}
        shorts = (
            await http.get("/v1/liquidations", params={"side": "short", "exchange": "bybit"})
        ).json()
        assert len(shorts["events"]) == 5


async def test_an_order_side_for_side_is_refused_with_what_to_send(live: Running) -> None:
    """Venues' feeds and Tardis files say buy/sell (the liquidation order's side): ``side=sell``
    was refused "side must be long or short, got 'sell'", with no word that a sell is a
    liquidated long; the REST route, the SDK (which shows the server's message) and the stream
    now say so."""
    headers = {"Authorization": f"Bearer {live.key}"}
    async with httpx.AsyncClient(base_url=live.url, headers=headers) as http:
        for sent in ("sell", "BUY"):
            refused = await http.get("/v1/liquidations", params={"side": sent})
            assert refused.status_code == 400
            message = refused.json()["error"]["message"]
            assert message.startswith(f"side must be long or short, got {sent!r}: "), message
            assert "an order that sells closes a long (send 'long')" in message, message
        other = await http.get("/v1/liquidations", params={"side": "up"})
        assert other.json()["error"]["message"] == "side must be long or short, got 'up'"
    stream = "sides must be long and/or short, got Sell: side is the liquidated position"
    with pytest.raises(BadSubscription, match=stream):
        parse_filter({"sides": ["Sell"]}, known_exchanges=registry.EXCHANGE_IDS)


def test_a_venue_name_for_an_exchange_id_is_refused_naming_its_ids() -> None:
    # "unknown exchange(s) Kraken; known: <13 ids>": the id to send was left to be found.
    with pytest.raises(BadSubscription, match=r"; did you mean kraken_futures, dydx_v4\?$"):
        parse_filter({"exchanges": ["Kraken", "dYdX"]}, known_exchanges=registry.EXCHANGE_IDS)
    with pytest.raises(BadSubscription) as refused:
        parse_filter({"exchanges": ["nasdaq"]}, known_exchanges=registry.EXCHANGE_IDS)
    assert "did you mean" not in str(refused.value)


async def test_known_exchanges_sides_and_coverages_are_taken_in_any_case(live: Running) -> None:
    """``?exchange=BYBIT`` was refused as an unknown exchange (as markets, these are names a
    person types: ``btc-perp`` was already BTC-PERP); a name no venue has is still a 400."""
    await live.push(
        venue_event(exchange="bybit", side="short"), venue_event(exchange="okx", side="long")
    )
    headers = {"Authorization": f"Bearer {live.key}"}
    async with httpx.AsyncClient(base_url=live.url, headers=headers) as http:
        for params in (
            {"exchange": "BYBIT"},
            {"exchange": "Bybit", "side": "SHORT"},
            {"exchange": "bybit", "coverage": "Complete"},
        ):
            response = await http.get("/v1/liquidations", params=params)
            assert response.status_code == 200, (params, response.text)
            assert [e["exchange"] for e in response.json()["events"]] == ["bybit"], params
        aggregate = await http.get(
            "/v1/liquidations/aggregate",
            params={"exchange": "OKX", "group_by": "exchange", "start": T0, "end": T0 + 86_400_000},
        )
        assert {b["group"] for b in aggregate.json()["buckets"]} == {"okx"}, aggregate.text
        # The words of the other choices too (order=TS was refused beside side=SHORT taken).
        by_ts = await http.get("/v1/liquidations", params={"order": "TS", "side": "Short"})
        assert [e["exchange"] for e in by_ts.json().get("events", [])] == ["bybit"], by_ts.text
        grouped = await http.get(
            "/v1/liquidations/aggregate",
            params={"group_by": "Exchange", "start": T0, "end": T0 + 86_400_000},
        )
        assert {b["group"] for b in grouped.json()["buckets"]} == {"okx", "bybit"}, grouped.text
        active = await http.get("/v1/cascades", params={"status": "ACTIVE"})
        assert active.status_code == 200, active.text
        coverage = await http.get("/v1/coverage", params={"exchange": "OKX"})
        assert coverage.status_code == 200, coverage.text
        for route in ("/v1/liquidations", "/v1/coverage"):
            refused = await http.get(route, params={"exchange": "Binance"})
            assert refused.status_code == 400
            message = refused.json()["error"]["message"]
            assert "unknown exchange 'Binance'" in message
            # A venue's name, as a person or a model writes it, names its feeds' ids.
            assert message.endswith("; did you mean binance_usdm, binance_coinm?"), message
            assert "binance_usdm" in message


async def test_bad_parameters_get_400_naming_the_parameter(live: Running) -> None:
    headers = {"Authorization": f"Bearer {live.key}"}
    async with httpx.AsyncClient(base_url=live.url, headers=headers) as http:
        for params, word in [
            ({"min_usd": "lots"}, "min_usd"),
            ({"limit": "0"}, "limit"),
            ({"side": "up"}, "side"),
            ({"exchange": "nyse"}, "exchange"),
            ({"start": "10", "end": "5"}, "end"),
            ({"market": "x" * 100}, "market"),
            # An exchange symbol or a bare coin matched nothing, silently: an empty page.
            ({"market": "BTCUSDT"}, "'BTCUSDT' is not a market name"),
            ({"market": "ETH-PERP,BTC"}, "'BTC' is not a market name"),
            # Seconds since the epoch, read as ms, are January 1970: everything, silently.
            ({"start": "1760126400"}, "start 1760126400 looks like seconds"),
            ({"end": "1760126400"}, "1760126400000"),
        ]:
            response = await http.get("/v1/liquidations", params=params)
            assert response.status_code == 400, params
            assert word in response.json()["error"]["message"]
        response = await http.get("/v1/liquidations/aggregate", params={"interval": "7m"})
        assert response.status_code == 400
        assert "interval" in response.json()["error"]["message"]
        for route in ("/v1/liquidations/aggregate", "/v1/cascades", "/v1/heatmap/BTCUSDT"):
            params = {} if route.startswith("/v1/heatmap") else {"market": "BTCUSDT"}
            response = await http.get(route, params=params)
            assert response.status_code == 400, route
            assert "'BTCUSDT' is not a market name" in response.json()["error"]["message"]
        # Names in any case, dated futures and non-Latin coins are market names.
        for market in ("eth-perp", "BTC-20250926", "币安人生-PERP"):
            response = await http.get("/v1/liquidations", params={"market": market})
            assert response.status_code == 200, (market, response.text)


async def test_an_end_before_its_start_is_refused_with_both_as_times(live: Running) -> None:
    # "end (1767225600000) must be after start (1798761600000)" answered the SDK's
    # history(start="2027-01-01", end="2026-01-01") and `history --start ... --end ...`: two
    # numbers the user never typed. Both routes that take a window say the times too.
    headers = {"Authorization": f"Bearer {live.key}"}
    window = {"start": "1798761600000", "end": "1767225600000"}
    async with httpx.AsyncClient(base_url=live.url, headers=headers) as http:
        for route in ("/v1/liquidations", "/v1/liquidations/aggregate", "/v1/coverage"):
            response = await http.get(route, params=window)
            assert response.status_code == 400, route
            assert response.json()["error"]["message"] == (
                "end (1767225600000, 2026-01-01T00:00:00Z) must be after start "
                "(1798761600000, 2027-01-01T00:00:00Z)"
            )


async def test_a_date_for_a_time_is_refused_with_its_ms(live: Running) -> None:
    # curl '/v1/liquidations?start=2025-10-10' (the form the SDK and the commands take) was
    # answered "start must be an integer, got '2025-10-10'": not what the integer is, nor
    # which one the date is. /v1/coverage kept that answer after the other two were fixed.
    headers = {"Authorization": f"Bearer {live.key}"}
    async with httpx.AsyncClient(base_url=live.url, headers=headers) as http:
        for route in ("/v1/liquidations", "/v1/liquidations/aggregate", "/v1/coverage"):
            response = await http.get(route, params={"start": "2025-10-10"})
            assert response.status_code == 400, route
            assert response.json()["error"]["message"] == (
                "start must be ms since the epoch (an integer), got '2025-10-10'; "
                "as ms, '2025-10-10' is 1760054400000"
            )
            response = await http.get(route, params={"end": "soon"})
            assert response.status_code == 400, route
            message = response.json()["error"]["message"]
            assert message == "end must be ms since the epoch (an integer), got 'soon'"
            # Seconds, read as ms, are January 1970 (coverage cut it to 31 days before now).
            response = await http.get(route, params={"start": "1760126400"})
            assert response.status_code == 400, route
            assert "start 1760126400 looks like seconds" in response.json()["error"]["message"]


async def test_the_plural_hint_names_only_the_streams_plural_filters(live: Running) -> None:
    # ?limits= and ?cursors= were answered "limits is the stream's spelling: this route takes
    # limit": the stream has no such field; only its list filters (markets, exchanges, sides,
    # coverages, channels) are plurals of a route's singular.
    async with httpx.AsyncClient(base_url=live.url) as http:
        for name in ("limits", "cursors"):
            response = await http.get("/v1/liquidations", params={"api_key": live.key, name: "5"})
            assert response.status_code == 400
            message = response.json()["error"]["message"]
            assert f"'{name}'" in message
            assert "stream's spelling" not in message, message
        response = await http.get(
            "/v1/liquidations", params={"api_key": live.key, "sides": "long", "limits": "5"}
        )
        message = response.json()["error"]["message"]
        assert message.endswith("; sides is the stream's spelling: this route takes side"), message


async def test_a_parameter_the_route_does_not_take_is_refused_naming_it(live: Running) -> None:
    # ?markets= is the stream's and the SDK's spelling; the REST route's is ?market=. Ignored,
    # it answered every market as if no filter were given.
    await live.push(venue_event(market="BTC-PERP"), venue_event(market="ETH-PERP"))
    async with httpx.AsyncClient(base_url=live.url) as http:
        keyed = {"api_key": live.key}
        response = await http.get("/v1/liquidations", params={**keyed, "markets": "BTC-PERP"})
        assert response.status_code == 400
        message = response.json()["error"]["message"]
        assert "'markets'" in message
        assert "markets is the stream's spelling: this route takes market" in message
        # And the other way: the SSE stream's filters are the subscribe message's (plural);
        # ?market= was refused "unknown field(s) market; allowed: ..." with no word that it
        # is the REST routes' name for markets.
        async with http.stream(
            "GET", "/v1/stream/sse", params={**keyed, "market": "BTC-PERP", "side": "long"}
        ) as sse:
            assert sse.status_code == 400
            message = json.loads(await sse.aread())["error"]["message"]
        assert message.startswith("unknown field(s) market, side; allowed: ")
        assert message.endswith(
            "(market, side: the REST routes' spelling; here it is markets, sides)"
        )
        wrong_route = await http.get("/v1/cascades", params={**keyed, "min_usd": 5})
        assert wrong_route.status_code == 400
        assert "'min_usd'" in wrong_route.json()["error"]["message"]
        # Every documented parameter, the key in the query string among them, still passes.
        fine = await http.get("/v1/liquidations", params={**keyed, "market": "BTC-PERP"})
        assert [e["market"] for e in fine.json()["events"]] == ["BTC-PERP"]
        # Routes that take no parameter refuse one too: /v1/markets?market=BTC-PERP answered
        # every market, as if filtered (the README promises a 400).
        for method, route in (
            ("GET", "/v1/markets"),
            ("GET", "/v1/keys"),
            ("DELETE", "/v1/keys/nope"),
        ):
            response = await http.request(method, route, params={**keyed, "market": "BTC-PERP"})
            assert response.status_code == 400, (route, response.text)
            assert "'market'" in response.json()["error"]["message"]
        markets = await http.get("/v1/markets", params=keyed)
        assert markets.status_code == 200


async def test_aggregate_by_side_per_minute(live: Running) -> None:
    await live.push(
        venue_event(side="long", size_usd=100.0, ts=T0),
        venue_event(side="long", size_usd=50.0, ts=T0 + 1_000),
        venue_event(side="short", size_usd=70.0, ts=T0 + 61_000),
    )
    headers = {"Authorization": f"Bearer {live.key}"}
    window = {"interval": "1m", "group_by": "side", "start": T0 - T0 % 60_000, "end": T0 + 600_000}
    async with httpx.AsyncClient(base_url=live.url, headers=headers) as http:
        response = await http.get("/v1/liquidations/aggregate", params=window)
        # A history cursor is not an aggregate's parameter: refused, never a silent cut.
        with_cursor = await http.get("/v1/liquidations/aggregate", params={**window, "cursor": 2})
    assert with_cursor.status_code == 400
    assert "'cursor'" in with_cursor.json()["error"]["message"]
    buckets = response.json()["buckets"]
    assert [(b["group"], b["count"], b["size_usd"]) for b in buckets] == [
        ("long", 2, 150.0),
        ("short", 1, 70.0),
    ]


async def test_an_aggregate_of_the_measure_alone_skips_the_estimate(live: Running) -> None:
    """``estimate=false`` answers the measure alone (``est_*`` repeat it, calibration
    ``none``): the dashboard's top markets show only the measure, and the open hour's
    estimate beside it was 0.34-0.45 s of CPU in a simulated crash, charged to the account.
    The default still carries the estimate."""
    now = now_ms()
    await live.push(*(venue_event(size_usd=1_000.0, ts=now - 1_000 * k) for k in range(5)))
    headers = {"Authorization": f"Bearer {live.key}"}
    start = now // 3_600_000 * 3_600_000 - 3_600_000
    window = {"interval": "1h", "group_by": "market", "start": start}
    async with httpx.AsyncClient(base_url=live.url, headers=headers) as http:
        default = await http.get("/v1/liquidations/aggregate", params=window)
        measured = await http.get(
            "/v1/liquidations/aggregate", params={**window, "estimate": "false"}
        )
        wrong = await http.get("/v1/liquidations/aggregate", params={**window, "estimate": "no"})
    assert default.status_code == measured.status_code == 200, measured.text
    [estimated] = default.json()["buckets"]
    [alone] = measured.json()["buckets"]
    assert estimated["count"] == alone["count"] == 5
    assert estimated["size_usd"] == alone["size_usd"] == 5_000.0
    # A throttled (snapshot) feed's events: the default adds what it hid.
    assert estimated["est_count"] > 5
    assert estimated["est_calibration"] != "none"
    assert (alone["est_count"], alone["est_size_usd"], alone["est_calibration"]) == (
        5,
        5_000.0,
        "none",
    )
    assert wrong.status_code == 400
    assert "estimate" in wrong.json()["error"]["message"]


async def test_the_open_hours_estimate_is_shared_for_a_few_seconds(
    live: Running, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The open hour's coverage factors were fitted again by every aggregate that touched it
    (its read of the day of minute rollups before it, 0.75 s of CPU on 275 simulated
    markets): now a fit serves the aggregates of the next few seconds, their measure read
    afresh each time."""
    now = now_ms()
    await live.push(*(venue_event(size_usd=1_000.0, ts=now - 1_000 * k) for k in range(5)))
    store: Any = live.server.store
    fits: list[str] = []
    read = store._read

    async def counted(sql: str, params: Any) -> Any:
        if sql.startswith("SELECT minute, market, exchange, side"):  # the fit's read
            fits.append(sql)
        return await read(sql, params)

    monkeypatch.setattr(store, "_read", counted)
    headers = {"Authorization": f"Bearer {live.key}"}
    window = {"interval": "1h", "group_by": "market", "start": now // 3_600_000 * 3_600_000}
    async with httpx.AsyncClient(base_url=live.url, headers=headers) as http:
        first = (await http.get("/v1/liquidations/aggregate", params=window)).json()
        assert len(fits) == 1
        await live.push(venue_event(size_usd=1_000.0, ts=now))
        second = (await http.get("/v1/liquidations/aggregate", params=window)).json()
        assert len(fits) == 1  # the fit of a moment ago
        [before], [after] = first["buckets"], second["buckets"]
        assert (before["count"], after["count"]) == (5, 6)  # the measure is read afresh
        ratio = before["est_count"] / before["count"]
        assert after["est_count"] == pytest.approx(6 * ratio, rel=1e-6)
        monkeypatch.setattr(store._open_hours, "clock", lambda: 1e12)  # past the few seconds
        await http.get("/v1/liquidations/aggregate", params=window)
        assert len(fits) == 2


async def test_aggregates_that_read_every_event_or_minute_are_bounded_to_a_week(
    live: Running,
) -> None:
    """With ``min_usd`` an aggregate reads the events themselves (rollups hold no sizes), and
    per minute it reads the minute rollups: over a year of a 3M-event store one request
    (``interval=1d&start=0&min_usd=0.01&group_by=side``, a 100 KB answer the size charge never
    saw) ran for over 6 minutes at 5.8 GB and stalled the event loop for seconds. Such a
    window is at most 7 days; hourly and daily buckets without ``min_usd`` take any span."""
    await live.push(venue_event(size_usd=500.0, ts=T0))
    day, week = 86_400_000, 7 * 86_400_000
    end = T0 - T0 % 3_600_000 + 3_600_000
    headers = {"Authorization": f"Bearer {live.key}"}
    path = "/v1/liquidations/aggregate"
    async with httpx.AsyncClient(base_url=live.url, headers=headers) as http:
        for params in (
            {"interval": "1d", "start": 0, "min_usd": 0.01},
            {"interval": "1h", "start": end - week - day, "end": end, "min_usd": 100},
            {"interval": "1m", "start": end - week - 60_000, "end": end},
        ):
            refused = await http.get(path, params={**params, "group_by": "side"})
            assert refused.status_code == 400, (params, refused.text)
            message = refused.json()["error"]["message"]
            assert "at most 7 days" in message, message
            # The window asked says its unit: "got 8.0" read as a figure to guess at.
            assert re.search(r"got [\d,]+\.\d days:", message), message
        for params in (
            {"interval": "1h", "start": end - week, "end": end, "min_usd": 100},
            {"interval": "1m", "start": end - week, "end": end},
            {"interval": "1d", "start": 0, "end": end},  # the hourly rollup: any span
        ):
            answer = await http.get(path, params={**params, "group_by": "side"})
            assert answer.status_code == 200, (params, answer.text)
            assert [b["count"] for b in answer.json()["buckets"]] == [1], params
        # Left out, the window of a daily aggregate with min_usd is the last 7 days (not 365).
        default = await http.get(path, params={"interval": "1d", "min_usd": 1, "end": end})
        assert default.status_code == 200
        assert [b["count"] for b in default.json()["buckets"]] == [1]


async def test_json_answers_are_never_sniffed_as_html(live: Running) -> None:
    # A 404 echoes the path it got; without nosniff a browser may read it as a page.
    headers = {"Authorization": f"Bearer {live.key}"}
    async with httpx.AsyncClient(base_url=live.url, headers=headers) as http:
        for path in ("/v1/nope<script>alert(1)</script>", "/v1/markets", "/v1/health"):
            response = await http.get(path)
            assert response.headers["content-type"] == "application/json", path
            assert response.headers["x-content-type-options"] == "nosniff", path
        limited = await http.get("/v1/liquidations", params={"limit": 0})
        assert limited.status_code == 400
        assert limited.headers["x-content-type-options"] == "nosniff"


async def test_markets_health_metrics_and_openapi(live: Running) -> None:
    await live.push(venue_event(market="SOL-PERP", price=150.0, exchange="okx"))
    headers = {"Authorization": f"Bearer {live.key}"}
    async with httpx.AsyncClient(base_url=live.url, headers=headers) as http:
        markets = (await http.get("/v1/markets")).json()["markets"]
        sol = next(m for m in markets if m["market"] == "SOL-PERP")
        assert sol["last_price"] == 150.0
        assert sol["last_price_ts"] == sol["last_ts"]  # the price is that one event's
        assert sol["exchanges"] == ["okx"]
        health = (await http.get("/v1/health")).json()
        assert health["status"] == "ok"
        assert health["last_seq"] >= 1
        metrics = (await http.get("/v1/metrics")).text
        assert 'purpleflea_events_total{outcome="published"} 1' in metrics
        spec = (await http.get("/openapi.json")).json()
        assert "/v1/liquidations" in spec["paths"]
        assert spec["openapi"].startswith("3.")


async def test_markets_day_totals_are_shared_for_a_few_seconds(
    live: Running, monkeypatch: pytest.MonkeyPatch
) -> None:
    # One aggregate over a day of minute rollups answers every caller for a few seconds,
    # concurrent ones included; last prices stay current.
    store = live.server.store
    calls: list[str] = []
    aggregate = store.aggregate

    async def counted(interval: Any, group_by: Any, query: Any, **options: Any) -> Any:
        calls.append(interval)
        # The measure alone: the estimate beside it, which the route drops, cost 0.4 s of
        # CPU every 5 s on 275 simulated markets in a crash (0.005 s without).
        assert options == {"estimate": False}
        return await aggregate(interval, group_by, query, **options)

    monkeypatch.setattr(store, "aggregate", counted)
    other = live.server.keys.create("other", "x").key
    async with httpx.AsyncClient(base_url=live.url) as http:
        answers = await asyncio.gather(
            http.get("/v1/markets", headers={"X-API-Key": live.key}),
            http.get("/v1/markets", headers={"X-API-Key": other}),
        )
        assert [a.status_code for a in answers] == [200, 200]
        await live.push(venue_event(market="SOL-PERP", price=151.0, exchange="okx", ts=now_ms()))
        again = (await http.get("/v1/markets", headers={"X-API-Key": live.key})).json()
        assert calls == ["1d"]
        sol = next(m for m in again["markets"] if m["market"] == "SOL-PERP")
        assert sol["last_price"] == 151.0
        monkeypatch.setattr(api, "DAY_TOTALS_TTL_S", 0.0)
        later = (await http.get("/v1/markets", headers={"X-API-Key": live.key})).json()
        assert calls == ["1d", "1d"]
        sol = next(m for m in later["markets"] if m["market"] == "SOL-PERP")
        assert sol["events_24h"] == 1


async def test_keep_alive_requests_are_not_held_back_by_nagle(live: Running) -> None:
    # Without TCP_NODELAY on accepted sockets each small response waits ~40 ms: Nagle holds
    # its last segment until the client's delayed ACK. Asked of the socket, not timed: under
    # load a median of 15 requests passed 20 ms with no Nagle in sight.
    assert live.uv is not None
    async with httpx.AsyncClient(base_url=live.url) as http:
        await http.get("/v1/health")
        [connection] = live.uv.server_state.connections
        sock = connection.transport.get_extra_info("socket")  # type: ignore[attr-defined]
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0


async def test_exchanges_lists_the_registry_without_a_key(live: Running) -> None:
    async with httpx.AsyncClient(base_url=live.url) as http:
        answer = await http.get("/v1/exchanges")
        spec = (await http.get("/openapi.json")).json()
    assert answer.status_code == 200
    rows = answer.json()["exchanges"]
    assert [row["id"] for row in rows] == [*registry.EXCHANGE_IDS, "sim"]
    by_id = {row["id"]: row for row in rows}
    assert by_id["bybit"] == {
        "id": "bybit",
        "name": "Bybit",
        "coverage": "complete",
        "price": "bankruptcy",
    }
    assert by_id["binance_usdm"]["coverage"] == "snapshot"
    assert by_id["hyperliquid"]["coverage"] == "sampled"
    # The simulator's own events carry `complete` (registry.coverage_of): its row says the
    # same, not null (the dashboard drew "unknown" for the coverage its events state).
    assert by_id["sim"]["coverage"] == "complete"
    assert all(row["coverage"] == registry.coverage_of(row["id"]) for row in rows)
    # What each one's price is (shared/EXCHANGES.md trap 5): only fills are the market's.
    assert by_id["binance_usdm"]["price"] == "fill"
    assert by_id["okx"]["price"] == "bankruptcy"
    assert by_id["bitmex"]["price"] == "order"
    assert by_id["sim"]["price"] == "fill"
    assert all(row["price"] == registry.price_kind_of(row["id"]) for row in rows)
    assert "/v1/exchanges" in spec["paths"]


async def test_metrics_give_large_counts_and_precise_sums_in_full(live: Running) -> None:
    """A tracker past a million events: its counters must still move by one (``%g`` wrote
    ``1.23457e+06`` and hid every increment below ten), and a latency sum keeps its digits."""
    live.server.tracker.counters["received"] = 12_345_678
    live.server.tracker.latency.observe("persisted", 1234.5678)
    async with httpx.AsyncClient(base_url=live.url) as http:
        text = (await http.get("/v1/metrics")).text
    assert 'purpleflea_events_total{outcome="received"} 12345678\n' in text
    assert 'purpleflea_stage_latency_seconds_sum{stage="persisted"} 1234.5678\n' in text
    for line in text.splitlines():
        if not line.startswith("#"):
            float(line.rsplit(" ", 1)[1].replace("Inf", "inf"))  # every value parses


def test_sample_values_follow_the_text_format() -> None:
    assert [sample_value(v) for v in (0.0, 3.0, 2.5e-05, 1e21, float("inf"))] == [
        "0",
        "3",
        "2.5e-05",
        "1000000000000000000000",
        "+Inf",
    ]
    assert sample_value(float("-inf")) == "-Inf"
    assert sample_value(float("nan")) == "NaN"


async def test_a_store_that_cannot_be_reached_is_a_503_in_json_naming_no_server(
    live: Running, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An API node whose PostgreSQL was cut answered history with Starlette's plain-text
    "Internal Server Error" (500): not the API's JSON error, and nothing saying to retry."""

    async def away(*_: object, **__: object) -> None:
        raise StoreUnavailable("PostgreSQL store 'postgresql://pf:***@db.internal/pf': refused")

    monkeypatch.setattr(live.server.store, "query", away)
    async with httpx.AsyncClient(base_url=live.url) as http:
        answer = await http.get("/v1/liquidations", headers={"X-API-Key": live.key})
    assert answer.status_code == 503
    assert answer.headers["retry-after"] == "5"
    error = answer.json()["error"]
    assert error["code"] == "store_unavailable"
    assert "retry" in error["message"]
    assert "db.internal" not in error["message"]  # the server's log and health say where


async def test_the_failure_counters_are_exported_before_the_first_failure(live: Running) -> None:
    """increase(purpleflea_events_total{outcome="store_write_errors"}[5m]) > 0 must fire on
    the first outage: a series that appears only at its first increment (at 11 after a 26 s
    PostgreSQL cut) shows no increase for Prometheus."""
    async with httpx.AsyncClient(base_url=live.url) as http:
        text = (await http.get("/v1/metrics")).text
    for outcome in ("store_write_errors", "publish_errors", "dropped_buffer_full"):
        assert f'purpleflea_events_total{{outcome="{outcome}"}} 0\n' in text


_NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
_LABELS = rf'\{{(?:{_NAME}="(?:[^"\\\n]|\\[\\"n])*"(?:,{_NAME}="(?:[^"\\\n]|\\[\\"n])*")*)?\}}'
_SUFFIXES = {"counter": ("",), "gauge": ("",), "histogram": ("_bucket", "_sum", "_count")}


def parse_exposition(text: str) -> dict[str, list[tuple[str, str, float]]]:
    """The Prometheus text format (0.0.4), read strictly: each family's HELP and TYPE once,
    before its samples, which are contiguous, named for the family (and its type's suffixes),
    well-formed and not repeated. Returns each family's samples (name, labels, value)."""
    families: dict[str, list[tuple[str, str, float]]] = {}
    types: dict[str, str] = {}
    helped: set[str] = set()
    current = ""
    seen: set[tuple[str, str]] = set()
    assert text.endswith("\n"), "the exposition ends with a newline"
    for line in text[:-1].split("\n"):
        if line.startswith("# HELP "):
            name = line.split(" ")[2]
            assert name not in helped | set(families), f"HELP again: {line}"
            assert re.fullmatch(_NAME, name), line
            helped.add(name)
            current = name
        elif line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ")
            assert name not in types, f"TYPE again: {line}"
            assert kind in _SUFFIXES, line
            types[name], current = kind, name
            families[name] = []
        else:
            found = re.fullmatch(rf"({_NAME})({_LABELS})? (\S+)", line)
            assert found, f"not a sample: {line!r}"
            name, labels, value = found.group(1), found.group(2) or "", found.group(3)
            assert current in types, f"a sample before its family's TYPE: {line}"
            assert name in {current + s for s in _SUFFIXES[types[current]]}, (current, line)
            assert (name, labels) not in seen, f"repeated: {line}"
            seen.add((name, labels))
            families[current].append((name, labels, float(value)))
    return families


async def test_metrics_name_what_they_count_beside_the_mixed_events_total(
    live: Running,
) -> None:
    """purpleflea_events_total mixed liquidations with snapshots, alerts and failed attempts
    under one name; it stays (dashboards read it), and families named for each sit beside."""
    first = venue_event(exchange="okx")
    await live.push(first, venue_event(exchange="okx"))
    await live.push(first)  # the same exchange event again: a duplicate
    tracker = live.server.tracker
    tracker.on_snapshot(
        MarketSnapshot(
            exchange="okx",
            symbol="BTC-USDT-SWAP",
            market="BTC-PERP",
            ts=T0,
            mark_price=60_000.0,
            open_interest=10.0,
            open_interest_usd=600_000.0,
        )
    )
    async with httpx.AsyncClient(base_url=live.url) as http:
        text = (await http.get("/v1/metrics")).text
    families = parse_exposition(text)

    def values(family: str) -> dict[str, float]:
        return {labels: value for _, labels, value in families[f"purpleflea_{family}"]}

    mixed = values("events_total")
    assert mixed['{outcome="received"}'] == 3
    assert mixed['{outcome="snapshots"}'] == 1  # a snapshot, counted as an "event"
    assert values("liquidations_total") == {
        '{outcome="received"}': 3,
        '{outcome="published"}': 2,
        '{outcome="duplicate"}': 1,
        '{outcome="unsized"}': 0,
        '{outcome="stored_unpublished"}': 0,
        '{outcome="dropped_buffer_full"}': 0,
        '{outcome="dropped_at_shutdown"}': 0,
        '{outcome="batch_error"}': 0,
        '{outcome="rejected_names"}': 0,
    }
    assert values("snapshots_total") == {'{outcome="received"}': 1, '{outcome="rejected"}': 0}
    assert values("store_write_failures_total") == {"": 0}
    assert values("publish_failures_total") == {"": 0}
    assert values("cascade_alerts_total") == {"": mixed.get('{outcome="cascade_alerts"}', 0)}
    assert "purpleflea_follower_resubscribes_total" not in families  # no follower here
    # The sequencer's dedupe: the ids it holds, and its drops by exchange.
    assert values("dedupe_window_ids") == {"": 2}
    assert values("dedupe_duplicates_total") == {'{exchange="okx"}': 1}


def test_every_pipeline_counter_has_a_family_named_for_it() -> None:
    """A counter added to the tracker's pipeline later is exported by its own name too."""
    sources = (
        "pipeline.py",
        "publish_backlog.py",
        "sequencing.py",
        "oi_recorder.py",
        "follower.py",
    )
    folder = Path(api.__file__).parent
    counted = {
        name
        for source in sources
        for name in re.findall(r'counters\["(\w+)"\]', (folder / source).read_text())
    }
    mapped = {counter for family in FAMILIES for counter in family[3].values()}
    assert counted  # the pattern still finds them
    assert counted <= mapped, counted - mapped
