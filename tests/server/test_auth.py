"""Accounts and keys: every data route and stream needs a valid key; limits; revocation."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import logging
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosedError

import purpleflea
from purpleflea import cputime
from purpleflea.client import AuthenticationError
from purpleflea.model import Liquidation
from purpleflea.server import auth
from purpleflea.server.auth import BYTES_PER_REQUEST, FREE_ANSWER_BYTES, AuthError, Gate
from purpleflea.server.health import Vitals, health_reasons, readiness_reasons
from purpleflea.server.keys import KeyInfo, SQLiteKeyStore
from purpleflea.server.keys_postgres import PostgresKeyStore
from purpleflea.server.ratelimit import RateLimiter
from tests.server.conftest import Running, make_config, running_server, until, venue_event
from tests.services import ensure_postgres

DATA_ROUTES = [
    "/v1/liquidations",
    "/v1/liquidations/aggregate",
    "/v1/markets",
    "/v1/cascades",
    "/v1/keys",
    "/v1/stream/sse",
]


async def test_every_data_route_refuses_missing_and_wrong_keys(live: Running) -> None:
    async with httpx.AsyncClient(base_url=live.url) as http:
        for route in DATA_ROUTES:
            response = await http.get(route)
            assert response.status_code == 401, route
            error = response.json()["error"]
            assert error["code"] == "missing_api_key"
            assert "POST /v1/keys" in error["message"]
            for headers in (
                {"Authorization": "Bearer pf_not-a-real-key"},
                {"X-API-Key": "nonsense"},
                {"Authorization": f"Bearer {live.key}x"},
            ):
                response = await http.get(route, headers=headers)
                assert response.status_code == 401, (route, headers)
                assert response.json()["error"]["code"] == "invalid_api_key"
        # Health, metrics and the spec are public; registration needs no key.
        for route in ("/v1/health", "/v1/metrics", "/openapi.json"):
            assert (await http.get(route)).status_code == 200


async def test_a_key_sent_in_authorization_without_bearer_is_named_not_taken_as_none(
    live: Running,
) -> None:
    # `Authorization: pf_...` (or `Token pf_...`) was read as no key at all: a data route said
    # "an API key is required" to a request that sent one, and POST /v1/keys, meant to mint a
    # key for the caller's account, registered a NEW account with it instead.
    async with httpx.AsyncClient(base_url=live.url) as http:
        for value in (live.key, f"Token {live.key}", "Bearer"):
            answer = await http.get("/v1/liquidations", headers={"Authorization": value})
            assert answer.status_code == 401, value
            error = answer.json()["error"]
            assert error["code"] == "missing_api_key"
            assert "the Authorization header" in error["message"], error
            assert "send 'Authorization: Bearer <key>'" in error["message"]
            assert live.key not in error["message"]  # a key is never echoed
            minted = await http.post(
                "/v1/keys", json={"account": "mistaken"}, headers={"Authorization": value}
            )
            assert minted.status_code == 401, value
        # Nothing was registered: the name is still free.
        assert (await http.post("/v1/keys", json={"account": "mistaken"})).status_code == 201
        metrics = (await http.get("/v1/metrics")).text
        assert 'auth_rejections_total{reason="malformed_authorization"} 6' in metrics
        # A proxy's Basic credentials beside the key (or alone, registering) are left alone.
        basic = {"Authorization": "Basic dXNlcjpwYXNz"}
        mine = await http.get("/v1/liquidations", headers={**basic, "X-API-Key": live.key})
        assert mine.status_code == 200
        fresh = await http.post("/v1/keys", json={"account": "behind-a-proxy"}, headers=basic)
        assert fresh.status_code == 201


async def test_stream_refuses_missing_and_wrong_keys(live: Running) -> None:
    for headers, code in (({}, "missing_api_key"), ({"X-API-Key": "pf_bogus"}, "invalid_api_key")):
        async with connect(live.ws_url, additional_headers=headers) as ws:
            error = json.loads(await ws.recv())
            assert (error["type"], error["code"]) == ("error", code)
            await ws.wait_closed()
            assert ws.close_code == 4401
    client = purpleflea.LiquidationClient(api_key="pf_bogus", base_url=live.url)
    with pytest.raises(AuthenticationError, match="not valid"):
        async with client.stream():
            pass


async def test_register_list_and_revoke_keys_over_the_api(live: Running) -> None:
    async with httpx.AsyncClient(base_url=live.url) as http:
        created = await http.post("/v1/keys", json={"account": "alice@example.com", "name": "bot"})
        assert created.status_code == 201
        key = created.json()["key"]
        assert key.startswith("pf_")
        headers = {"Authorization": f"Bearer {key}"}
        second = await http.post("/v1/keys", json={"name": "backup"}, headers=headers)
        assert second.json()["account"] == "alice@example.com"
        listed = (await http.get("/v1/keys", headers=headers)).json()["keys"]
        assert sorted(k["name"] for k in listed) == ["backup", "bot"]
        assert all("key" not in k and "hash" not in k for k in listed)
        # Another account's key cannot be revoked, nor listed.
        other = (await http.get("/v1/keys", headers={"X-API-Key": live.key})).json()["keys"]
        assert {k["account"] for k in other} == {"tester"}
        response = await http.delete(f"/v1/keys/{other[0]['key_id']}", headers=headers)
        assert response.status_code == 404
        response = await http.delete(f"/v1/keys/{second.json()['key_id']}", headers=headers)
        assert response.status_code == 200
        assert (
            await http.get("/v1/markets", headers={"X-API-Key": second.json()["key"]})
        ).status_code == 401
        bad = await http.post("/v1/keys", content=b"{nope")
        assert bad.status_code == 400
        assert "JSON" in bad.json()["error"]["message"]
        assert (await http.post("/v1/keys", json={"name": "no account"})).status_code == 400
    # Only hashes are stored.
    rows = live.server.keys._db.execute("SELECT * FROM api_keys").fetchall()
    assert not any(key in str(row) for row in rows)


async def test_a_repeated_revoke_succeeds_and_says_the_key_was_already_revoked(
    live: Running,
) -> None:
    """A DELETE retried after its first answer was lost (the revoke committed) answered 404, so
    a careful client reported a failure for a revoke that happened. A key of another account,
    or one that never existed, stays 404 with the same message shape (no oracle)."""
    async with httpx.AsyncClient(base_url=live.url) as http:
        created = await http.post("/v1/keys", json={"account": "retrier", "name": "main"})
        headers = {"X-API-Key": created.json()["key"]}
        spare = (await http.post("/v1/keys", json={"name": "spare"}, headers=headers)).json()
        first = await http.delete(f"/v1/keys/{spare['key_id']}", headers=headers)
        assert first.status_code == 200, first.text
        assert first.json()["already_revoked"] is False
        again = await http.delete(f"/v1/keys/{spare['key_id']}", headers=headers)
        assert again.status_code == 200, again.text
        assert again.json()["revoked"] == spare["key_id"]
        assert again.json()["already_revoked"] is True
        # The time of the revoke that happened, not of the retry.
        assert again.json()["revoked_at"] == first.json()["revoked_at"]
        assert (await http.get("/v1/markets", headers={"X-API-Key": spare["key"]})).status_code == (
            401
        )
        # Another account's key, revoked or not, and an id that never existed: the same 404.
        others = (await http.get("/v1/keys", headers={"X-API-Key": live.key})).json()["keys"]
        tester_key_id = others[0]["key_id"]
        live.server.keys.revoke(tester_key_id)
        answers = [
            await http.delete(f"/v1/keys/{key_id}", headers=headers)
            for key_id in (tester_key_id, "neverWas")
        ]
        assert [a.status_code for a in answers] == [404, 404]
        messages = [a.json()["error"]["message"] for a in answers]
        assert messages[0].replace(tester_key_id, "ID") == messages[1].replace("neverWas", "ID")


async def test_rate_limit_answers_429_with_retry_after(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Requests counted alone: a starved request's wall time (past FREE_REQUEST_S) or CPU is
    # charged as more requests (tests below), which would move the refusals.
    monkeypatch.setattr(auth, "FREE_REQUEST_S", 3600.0)
    monkeypatch.setattr(auth, "FREE_CPU_S", 3600.0)
    async with running_server(make_config(tmp_path)) as live:
        # The bucket's clock is the test's: on the wall clock, a loaded machine's requests
        # came slower than the 2 a second it refills, and none of 8 was refused (under 3 CPU
        # burners).
        now = [0.0]
        live.server.gate.limiter = RateLimiter(2.0, 5.0, clock=lambda: now[0])
        headers = {"Authorization": f"Bearer {live.key}"}
        async with httpx.AsyncClient(base_url=live.url, headers=headers) as http:
            statuses = [(await http.get("/v1/markets")).status_code for _ in range(8)]
            assert statuses == [200] * 5 + [429] * 3
            now[0] += 0.4  # not yet a whole request's refill
            response = await http.get("/v1/markets")
            assert response.status_code == 429
            assert int(response.headers["Retry-After"]) >= 1
            assert "rate limit" in response.json()["error"]["message"]
            now[0] += 1.1
            assert (await http.get("/v1/markets")).status_code == 200


async def test_a_large_answer_costs_more_of_the_rate_limit(tmp_path: Path) -> None:
    # A page of 1,000 events (~290 KB) is one request, as paging history always was; an answer
    # past FREE_ANSWER_BYTES counts one more request per further 64 KiB: here a per-minute
    # aggregate of 700 markets over 12 minutes (~1.5 MB).
    config = make_config(tmp_path, rate_per_s=0.01, rate_burst=40.0)
    t0 = (int(time.time() * 1000) - 3_600_000) // 3_600_000 * 3_600_000
    async with running_server(config) as live:
        await live.push(*(venue_event() for _ in range(1_000)))
        markets = [f"M{i}-PERP" for i in range(700)]
        await live.push(
            *(venue_event(market=m, ts=t0 + 60_000 * k) for m in markets for k in range(12))
        )
        headers = {"Authorization": f"Bearer {live.key}"}
        async with httpx.AsyncClient(base_url=live.url, headers=headers) as http:
            page = await http.get("/v1/liquidations", params={"limit": 1_000})
            assert page.status_code == 200
            assert BYTES_PER_REQUEST < len(page.content) < FREE_ANSWER_BYTES
            window = {"interval": "1m", "group_by": "market", "start": t0, "end": t0 + 720_000}
            big = await http.get("/v1/liquidations/aggregate", params=window)
            assert big.status_code == 200
            size = len(big.content)
            extra = (size - FREE_ANSWER_BYTES) // BYTES_PER_REQUEST
            assert 1 <= extra <= 30, size
            left = 40 - 2 - extra  # the page and the aggregate took one each
            # (At least: the aggregate's CPU may cost more than its size.)
            assert await _answered(http, live.key, "/v1/liquidations?limit=1") <= left
        # Another account is not charged for it.
        other = live.server.keys.create("other", "x").key
        async with httpx.AsyncClient(base_url=live.url) as http:
            response = await http.get("/v1/cascades", headers={"X-API-Key": other})
            assert response.status_code == 200


async def test_a_long_request_costs_more_of_the_rate_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A small answer can still take seconds to compute: a year's daily aggregate by side on a
    3M-event store is 132 KB and 4.8 s of CPU every time, and two of an account's requests
    ran at once, back to back, within the rate (two cores). A request that runs past
    FREE_REQUEST_S counts one more request per further SECONDS_PER_REQUEST."""
    config = make_config(tmp_path, rate_per_s=1.0, rate_burst=5.0)
    async with running_server(config) as live:
        store = live.server.store
        query = store.query

        async def slow_query(*args: Any, **kwargs: Any) -> Any:
            await asyncio.sleep(auth.FREE_REQUEST_S + 0.5)
            return await query(*args, **kwargs)

        headers = {"Authorization": f"Bearer {live.key}"}
        # A store whose reads are another server's work (PostgreSQL): the wait is its cost.
        monkeypatch.setattr(store, "reads_metered", False)
        async with httpx.AsyncClient(base_url=live.url, headers=headers) as http:
            monkeypatch.setattr(store, "query", slow_query)
            assert (await http.get("/v1/liquidations")).status_code == 200
            monkeypatch.setattr(store, "query", query)
            after = await http.get("/v1/liquidations")
        # 0.5 s past the free second: 20 more requests; the burst held 4 after the first.
        assert after.status_code == 429, after.text
        assert int(after.headers["Retry-After"]) >= 10


async def test_a_request_slowed_by_a_loaded_machine_costs_its_cpu_not_its_wall_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With SQLite every read runs on this process's metered threads, so the CPU says what a
    request cost. Its wall time past a second was charged too: at load 10-12 in a simulated
    crash the dashboard's top-markets aggregate (0.34-0.45 s of CPU) ran 1.5-2.5 s, was
    charged ~40 requests, and a fresh account opening the dashboard again 4 s later got 429
    'retry after 31 s' (its live feed, paced by the same budget, stood still). Here the
    request waits 1.5 s without using CPU (what other work on a loaded machine looks like)."""
    config = make_config(tmp_path, rate_per_s=0.01, rate_burst=5.0)
    async with running_server(config) as live:
        store = live.server.store
        query = store.query

        async def slowed(*args: Any, **kwargs: Any) -> Any:
            await asyncio.sleep(auth.FREE_REQUEST_S + 0.5)
            return await query(*args, **kwargs)

        headers = {"Authorization": f"Bearer {live.key}"}
        async with httpx.AsyncClient(base_url=live.url, headers=headers) as http:
            monkeypatch.setattr(store, "query", slowed)
            assert (await http.get("/v1/liquidations")).status_code == 200
            monkeypatch.setattr(store, "query", query)
            # One request of the burst of 5, as any other: 4 left (the 5th is refused).
            after = [(await http.get("/v1/liquidations")).status_code for _ in range(5)]
        assert after == [200] * 4 + [429], after


def _spin(seconds: float) -> None:
    """Use ``seconds`` of this thread's CPU, as a costly query does."""
    started = time.thread_time()
    while time.thread_time() - started < seconds:
        pass


async def _answered(http: httpx.AsyncClient, key: str, path: str, most: int = 60) -> int:
    """Requests of ``path`` answered 200 before the first 429."""
    for n in range(most):
        answer = await http.get(path, headers={"X-API-Key": key})
        if answer.status_code == 429:
            return n
        assert answer.status_code == 200, answer.text
    return most


@pytest.mark.parametrize("where", ["store thread", "event loop"])
async def test_a_fast_but_costly_request_is_charged_for_its_cpu(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    """Only wall time past a second was charged, so an account could repeat the costliest
    request that stays under it, two at once: two cores within its rate. A request is now
    charged for the CPU it uses (on the store's reader threads and its own steps on the
    event loop) past FREE_CPU_S, one more request per further CPU_S_PER_REQUEST."""
    cost = 2 * auth.FREE_CPU_S
    # No wall time is charged here, however long a loaded machine takes over each request
    # (past a second under 4 CPU burners): what is charged is the CPU.
    monkeypatch.setattr(auth, "FREE_REQUEST_S", 3600.0)
    config = make_config(tmp_path, rate_per_s=0.01, rate_burst=40.0)
    async with running_server(config) as live:
        await live.push(venue_event())
        store = live.server.store
        query = store.query

        async def costly(*args: Any, **kwargs: Any) -> Any:
            if where == "store thread":  # where the store's reads run, counted as they are
                readers = store._readers  # type: ignore[attr-defined]
                await asyncio.get_running_loop().run_in_executor(
                    readers, cputime.on_thread(_spin, cost)
                )
            else:
                _spin(cost)
            return await query(*args, **kwargs)

        cheap_key = live.server.keys.create("cheap", "x").key
        async with httpx.AsyncClient(base_url=live.url, timeout=30) as http:
            assert await _answered(http, cheap_key, "/v1/liquidations?limit=1") == 40
            monkeypatch.setattr(store, "query", costly)
            answered = await _answered(http, live.key, "/v1/liquidations?limit=1")
        # Each costs 1 + FREE_CPU_S / CPU_S_PER_REQUEST (3) requests of the 40: 14 answered
        # (the last one into debt); uncharged, 40 were.
        assert answered <= 15, answered


async def test_a_store_read_is_counted_to_the_request_that_made_it(tmp_path: Path) -> None:
    spin = (
        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 3000000) "
        "SELECT count(*) FROM c"
    )
    async with running_server(make_config(tmp_path)) as live:
        store = live.server.store
        meter = cputime.CpuMeter()
        used = time.process_time()
        await cputime.metered(store._read(spin, ()), meter)  # type: ignore[attr-defined]
        used = time.process_time() - used
        # On a reader thread: counted there, not on the loop (which only waited).
        assert 0.02 < meter.seconds <= used * 1.05, (meter.seconds, used)
        assert meter.seconds > 0.7 * used, (meter.seconds, used)
        unmetered = await store._read(spin, ())  # type: ignore[attr-defined]
        assert unmetered == [(3_000_000,)]


async def test_paging_history_and_a_dashboard_cost_one_request_each(tmp_path: Path) -> None:
    """What normal use asks is not charged extra: SDK pages of 1,000 events and the
    dashboard's requests each cost one request of the rate limit."""
    config = make_config(tmp_path, rate_per_s=0.01, rate_burst=40.0)
    now = int(time.time() * 1000)
    async with running_server(config) as live:
        markets = [f"M{i}-PERP" for i in range(50)]
        await live.push(
            *(
                venue_event(market=markets[n % 50], side=("long", "short")[n % 2], ts=now - n * 500)
                for n in range(3_000)
            )
        )
        day = now - 86_400_000
        week = now - 7 * 86_400_000
        normal = [
            *[f"/v1/liquidations?limit=1000&cursor={c}" for c in (10**9, 2_001, 1_001)],
            "/v1/liquidations?limit=1000&min_usd=100000",
            "/v1/liquidations?limit=1000&market=M7-PERP",
            "/v1/liquidations?limit=200",
            "/v1/cascades?status=active",
            "/v1/markets",
            f"/v1/liquidations/aggregate?interval=1h&group_by=market&start={day}",
            f"/v1/liquidations/aggregate?interval=1h&group_by=market&start={week}",
            "/v1/coverage",
        ]
        async with httpx.AsyncClient(base_url=live.url, timeout=30) as http:
            for path in normal:
                answer = await http.get(path, headers={"X-API-Key": live.key})
                assert answer.status_code == 200, (path, answer.text)
            left = await _answered(http, live.key, "/v1/liquidations?limit=1")
        assert left == 40 - len(normal)


async def test_a_garbage_collection_during_a_request_is_not_charged_to_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A full collection walks the whole process's heap, and runs in whichever request's step
    crossed its threshold: CI's paging test was charged three requests extra (``26 == 29``).
    Here each of five requests runs one (``gc.collect`` standing in for the interpreter's)."""
    heap = [[n] for n in range(1_500_000)]  # alive: each pass walks them (~0.1 s of CPU)
    config = make_config(tmp_path, rate_per_s=0.01, rate_burst=40.0)
    async with running_server(config) as live:
        await live.push(venue_event())
        store = live.server.store
        query = store.query

        async def collecting(*args: Any, **kwargs: Any) -> Any:
            gc.collect()
            return await query(*args, **kwargs)

        async with httpx.AsyncClient(base_url=live.url, timeout=30) as http:
            monkeypatch.setattr(store, "query", collecting)
            for _ in range(5):
                answer = await http.get("/v1/liquidations", headers={"X-API-Key": live.key})
                assert answer.status_code == 200, answer.text
            monkeypatch.setattr(store, "query", query)
            left = await _answered(http, live.key, "/v1/liquidations?limit=1")
    assert left == 40 - 5
    del heap


async def test_an_account_s_requests_take_turns(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Two run at once, the rest wait (and are charged when their turn comes); beyond the
    # waiting room, refused. Another account's requests do not wait behind them.
    monkeypatch.setattr(auth, "REQUESTS_WAITING", 2)
    async with running_server(make_config(tmp_path)) as live:
        store = live.server.store
        inside: list[int] = []
        release = asyncio.Event()
        query = store.query

        async def slow(wanted: Any) -> Any:
            inside.append(1)
            await release.wait()
            return await query(wanted)

        monkeypatch.setattr(store, "query", slow)
        other = live.server.keys.create("other", "x").key
        async with httpx.AsyncClient(base_url=live.url) as http:

            def get(key: str) -> Any:
                return asyncio.create_task(http.get("/v1/liquidations", headers={"X-API-Key": key}))

            mine = [get(live.key) for _ in range(4)]
            await until(lambda: len(inside) == 2, 5, "two requests running")
            refused = await http.get("/v1/liquidations", headers={"X-API-Key": live.key})
            assert refused.status_code == 429
            assert "at most 2 run at once, 2 wait" in refused.json()["error"]["message"]
            theirs = get(other)
            await until(lambda: len(inside) == 3, 5, "the other account's request running")
            await asyncio.sleep(0.2)
            assert len(inside) == 3  # the first account's other two still wait
            release.set()
            statuses = [r.status_code for r in await asyncio.gather(*mine, theirs)]
        assert statuses == [200] * 5
        assert len(inside) == 5


async def test_revoking_a_key_closes_its_open_stream_within_a_second(live: Running) -> None:
    async with httpx.AsyncClient(base_url=live.url) as http:
        created = (await http.post("/v1/keys", json={"account": "bob"})).json()
    client = purpleflea.LiquidationClient(api_key=created["key"], base_url=live.url)
    async with client.stream() as stream:
        await live.push(venue_event())
        iterator = stream.__aiter__()
        assert isinstance(await asyncio.wait_for(iterator.__anext__(), 5), Liquidation)
        started = time.monotonic()
        async with httpx.AsyncClient(base_url=live.url) as http:
            headers = {"X-API-Key": created["key"]}
            response = await http.delete(f"/v1/keys/{created['key_id']}", headers=headers)
            assert response.json()["streams_closed"] == 1
        with pytest.raises(AuthenticationError, match="revoked"):
            await asyncio.wait_for(iterator.__anext__(), 5)
        assert time.monotonic() - started < 1.0


async def test_revocation_from_the_cli_closes_streams_too(live: Running) -> None:
    new = live.server.keys.create("carol", "cli")
    headers = {"Authorization": f"Bearer {new.key}"}
    async with connect(live.ws_url, additional_headers=headers) as ws:
        await ws.send(json.dumps({"op": "subscribe"}))
        assert json.loads(await ws.recv())["type"] == "subscribed"
        data_dir = live.server.config.data_dir
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "purpleflea.cli",
                "keys",
                "--data-dir",
                str(data_dir),
                "revoke",
                new.info.key_id,
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        assert "revoked" in result.stdout
        started = time.monotonic()
        frames = []

        async def read_all() -> None:
            async for raw in ws:
                frames.append(json.loads(raw))

        with pytest.raises(ConnectionClosedError):
            await read_all()
        assert time.monotonic() - started < 1.0
        assert frames[-1]["code"] == "key_revoked"
        assert ws.close_code == 4403


async def test_no_key_value_appears_in_any_log_line(
    live: Running, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    async with httpx.AsyncClient(base_url=live.url) as http:
        await http.get("/v1/liquidations", params={"api_key": live.key})
        await http.get("/v1/liquidations", headers={"Authorization": f"Bearer {live.key}"})
        await http.get("/v1/liquidations", params={"api_key": "pf_wrong_key_value"})
        created = (await http.post("/v1/keys", json={"account": "dave"})).json()
    async with connect(live.ws_url + f"?api_key={live.key}") as ws:
        await ws.send(json.dumps({"op": "subscribe"}))
        await ws.recv()
    await asyncio.sleep(0.1)
    # The server's loggers (ours, uvicorn's, starlette's); the test's own HTTP clients log
    # the URLs they call, key included, which is the caller's business.
    server_side = ("purpleflea", "uvicorn", "starlette")
    text = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith(server_side))
    assert "/v1/liquidations?api_key=<redacted>" in text  # the access log ran
    for secret in (live.key, "pf_wrong_key_value", created["key"]):
        assert secret not in text


async def test_a_key_under_an_encoded_parameter_name_is_redacted_in_the_access_log(
    live: Running, caplog: pytest.LogCaptureFixture
) -> None:
    """``?api%5Fkey=`` is ``api_key`` to the server (it authenticates), but the access log
    matched the raw text ``api_key=`` and wrote the key out whole under ``purpleflea -v``."""
    caplog.set_level(logging.DEBUG, logger="purpleflea.access")
    async with httpx.AsyncClient(base_url=live.url) as http:
        for name in ("api%5Fkey", "api%5fkey", "%61pi_key", "api_k%65y"):
            answer = await http.get(f"/v1/markets?{name}={live.key}&x=1")
            assert answer.status_code == 400, name  # authenticated, then x refused
    lines = [r.getMessage() for r in caplog.records if r.name == "purpleflea.access"]
    assert len(lines) == 4
    for line in lines:
        assert live.key not in line
        assert "=<redacted>&x=1" in line


async def test_a_path_with_line_breaks_is_logged_on_one_line(
    live: Running, caplog: pytest.LogCaptureFixture
) -> None:
    """A request path with an encoded CR LF wrote a forged line into the server's log."""
    caplog.set_level(logging.DEBUG, logger="purpleflea.access")
    forged = "2026-12-07 00:00:00,000 ERROR purpleflea.server: forged"
    async with httpx.AsyncClient(base_url=live.url) as http:
        answer = await http.get("/v1/x%0D%0A" + forged.replace(" ", "%20"))
    assert answer.status_code == 404
    (line,) = [r.getMessage() for r in caplog.records if r.name == "purpleflea.access"]
    assert "\n" not in line
    assert "\r" not in line
    assert line.startswith("GET /v1/x%0D%0A2026-12-07%2000:00:00,000%20ERROR")


async def test_revocations_made_while_the_key_store_is_away_apply_when_it_is_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A scale-out's key store (PostgreSQL) away for a while: the revocation poll fails, says
    so once and in health, and applies what was revoked meanwhile when it works again. (The
    watcher used to end at its first failure: after a 5 s database cut, a key revoked later
    kept its stream and its REST access on that node until a restart.)"""
    keys = SQLiteKeyStore(tmp_path / "keys.sqlite")
    away = True
    read = keys.revoked_since

    def revoked_since(since_ms: int) -> list[str]:
        if away:
            raise ConnectionError("key store 'postgresql://db/pf': cannot connect: refused")
        return read(since_ms)

    monkeypatch.setattr(keys, "revoked_since", revoked_since)
    gate = Gate(keys, RateLimiter(10, 40))
    new = keys.register("desk")
    kicked = asyncio.Event()
    gate.streams.add(gate.authenticate(new.key), lambda _why: kicked.set())
    caplog.set_level(logging.INFO, logger="purpleflea.server")
    watcher = asyncio.create_task(gate.watch_revocations(0.02, lambda: time.time_ns() // 10**6))
    try:
        await asyncio.sleep(0.1)
        revoked = keys.revoke(new.info.key_id)
        assert revoked is not None
        assert not revoked.already

        def failed_polls() -> int:
            said = gate.key_store_failures()
            return int(said[0].split("(")[1].split(" polls")[0]) if said else 0

        # Five failed polls, every 0.02 s (it slept 0.2 s: a loaded machine polls less often).
        await until(lambda: failed_polls() >= 5, 30, "five failed polls")
        assert not kicked.is_set()
        assert not watcher.done()
        (reason,) = gate.key_store_failures()
        assert reason.startswith("keys: revocation poll failing for ")
        assert "refused" in reason
        assert int(reason.split("(")[1].split(" polls")[0]) >= 5
        assert "revocation_poll_failures" not in gate.counters  # not an auth rejection
        away = False
        await asyncio.wait_for(kicked.wait(), 1.0)
        assert gate.key_store_failures() == []
        with pytest.raises(AuthError, match="not valid"):
            gate.authenticate(new.key)
    finally:
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher
        keys.close()
    lines = [r.getMessage() for r in caplog.records if "revocation poll" in r.getMessage()]
    assert len(lines) == 2, lines  # one when it starts failing, one when it works again
    assert "refused" in lines[0]
    assert "works again" in lines[1]


def test_a_failing_key_store_degrades_health_but_not_readiness() -> None:
    vitals = Vitals(
        source="none",
        started=True,
        stopping=False,
        source_running=None,
        quiet_s=0.0,
        connections=[],
        store_failures=[],
        bus_up=True,
        key_store_failures=["keys: revocation poll failing for 3 s (6 polls): refused"],
    )
    assert health_reasons(vitals) == vitals.key_store_failures
    assert readiness_reasons(vitals) == []


def test_the_postgres_key_store_survives_the_server_dropping_its_connection() -> None:
    """A key checked after PostgreSQL restarted (or a proxy dropped the connection): the
    store reconnects once instead of failing the request (a 500 on an API node)."""
    dsn = ensure_postgres()
    keys = PostgresKeyStore(dsn)
    try:
        new = keys.register(f"desk-{time.time_ns()}")
        with psycopg.connect(dsn, autocommit=True) as admin:
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE pid <> "
                "pg_backend_pid() AND datname = current_database() AND application_name = ''"
            )
        info = keys.verify(new.key)
        assert info is not None
        assert info.key_id == new.info.key_id
    finally:
        keys.close()


def test_the_postgres_key_store_registers_at_once_after_the_server_dropped_it() -> None:
    """POST /v1/keys (a transaction) as the first use of a connection PostgreSQL dropped
    while idle: it failed with psycopg's AdminShutdown (a plain 500); only single statements
    reconnected."""
    dsn = ensure_postgres()
    keys = PostgresKeyStore(dsn)
    try:
        keys.register(f"desk-{time.time_ns()}")
        with psycopg.connect(dsn, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (keys._conn.info.backend_pid,))
        account = f"desk-{time.time_ns()}"
        new = keys.register(account)
        assert keys.verify(new.key) is not None
        assert [k.key_id for k in keys.list_keys(account)] == [new.info.key_id]
    finally:
        keys.close()


def test_closing_the_key_store_waits_for_a_query_running_on_another_thread(
    tmp_path: Path,
) -> None:
    """The revocation poll queries the key store on a thread; the server closing the store
    under a running query crashed the test process (segmentation fault, 1 run in 6)."""
    keys = SQLiteKeyStore(tmp_path / "keys.sqlite")
    with keys._lock:  # a query in progress on another thread holds it
        closing = threading.Thread(target=keys.close)
        closing.start()
        closing.join(0.2)
        assert closing.is_alive()  # close waits for the query
    closing.join(2.0)
    assert not closing.is_alive()


def test_a_rate_limit_message_says_its_wait_rounded_up_never_zero() -> None:
    # An agent's tool error read "retry after 0.00 s" (the wait to two decimals).
    now = [0.0]
    gate = Gate(SQLiteKeyStore(":memory:"), RateLimiter(10.0, 1.0, clock=lambda: now[0]))
    info = KeyInfo(key_id="k1", account="acme", name="a", created_at=0)
    gate.limit(info)
    now[0] = 0.0999  # the next request may go 0.0001 s from now
    with pytest.raises(AuthError) as refused:
        gate.limit(info)
    assert refused.value.message.endswith("exceeded for account 'acme'; retry after 0.1 s")
