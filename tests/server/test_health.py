"""Health that tells the truth (issue 16, findings 5 and 6), and readiness.

``/v1/health`` answers 200 with ``status`` ``ok`` only while data flows, else ``degraded``
with its ``reasons``; ``/v1/ready`` answers 503 while the process cannot serve.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest

import purpleflea.ingest.live
from purpleflea.ingest.backoff import Backoff
from purpleflea.server.health import Vitals, health_reasons, readiness_reasons
from purpleflea.server.sources import SimStatus
from tests.fakes.exchanges import FakeExchange, dialect_for
from tests.ports import refused_port
from tests.server.conftest import Running, hold_warm_up_halfway, make_config, running_server
from tests.server.test_api import parse_exposition

TIMEOUT_S = 30.0


def _vitals(**overrides: Any) -> Vitals:
    base: dict[str, Any] = {
        "source": "sim",
        "started": True,
        "stopping": False,
        "source_running": True,
        "quiet_s": 1.0,
        "connections": [],
        "store_failures": [],
        "bus_up": True,
    }
    return Vitals(**{**base, **overrides})


def _connection(state: str, age: float | None) -> dict[str, Any]:
    return {"name": "okx", "state": state, "last_message_age_s": age}


@pytest.mark.parametrize(
    ("overrides", "reasons"),
    [
        ({}, []),
        ({"source": "none", "source_running": None, "quiet_s": 1e9}, []),
        ({"quiet_s": 61.0}, ["source sim: no event for 61 s"]),
        (
            {"source": "replay", "source_running": False},
            ["source replay: not running (finished or failed; see the log)"],
        ),
        ({"source": "live", "connections": [_connection("connected", 0.5)]}, []),
        (
            {"source": "live", "connections": [_connection("backoff", None)]},
            ["source live: no exchange connection is up (1 configured)"],
        ),
        (
            {"source": "live", "connections": [_connection("connected", 90.0)]},
            ["source live: no frame for 90 s on any connection"],
        ),
        ({"bus_up": False}, ["bus: not connected"]),
        (
            {"bus_up": False, "unpublished_seqs": 7},
            [
                "bus: not connected",
                "bus: 7 stored seqs not published yet (published from the store, in seq "
                "order, once the bus takes them)",
            ],
        ),
        ({"store_failures": ["store: events writes failing"]}, ["store: events writes failing"]),
        ({"stopping": True}, ["shutting down"]),
    ],
)
def test_health_reasons(overrides: dict[str, Any], reasons: list[str]) -> None:
    assert health_reasons(_vitals(**overrides)) == reasons


def test_a_publish_backlog_degrades_health_but_not_readiness() -> None:
    # Connected, but what an outage left is not on the bus yet (or cannot go: a stream
    # deleted): stream clients and webhooks lack those seqs meanwhile.
    backlog = _vitals(unpublished_seqs=3)
    assert health_reasons(backlog) == [
        "bus: 3 stored seqs not published yet (published from the store, in seq order, once "
        "the bus takes them)"
    ]
    assert readiness_reasons(backlog) == []


def test_a_silent_feed_degrades_health_but_not_readiness() -> None:
    quiet = _vitals(quiet_s=600.0)
    assert health_reasons(quiet)
    assert readiness_reasons(quiet) == []
    assert readiness_reasons(_vitals(started=False)) == ["starting: the tracker is not running yet"]
    assert readiness_reasons(_vitals(store_failures=["store: x"])) == ["store: x"]


async def _get(running: Running, path: str) -> httpx.Response:
    async with httpx.AsyncClient(base_url=running.url, timeout=10) as http:
        return await http.get(path)


async def _until(condition: Callable[[], Awaitable[bool]], what: str) -> None:
    deadline = time.monotonic() + TIMEOUT_S
    while not await condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


@pytest.fixture
def live_okx_at(monkeypatch: pytest.MonkeyPatch) -> Callable[[str], None]:
    """Point ``--source live`` at one OKX connection at ``url`` (no REST, fast retries)."""
    real = purpleflea.ingest.live.LiveIngest

    def point(url: str) -> None:
        factory = partial(
            real,
            exchanges=["okx"],
            urls={"okx": url},
            catalog_sources=(),
            poll_sources=(),
            catalog_wait_s=0.1,
            backoff=lambda: Backoff(base=0.05, cap=0.2),
            open_timeout=2.0,
        )
        monkeypatch.setattr(purpleflea.ingest.live, "LiveIngest", factory)

    return point


async def test_live_with_no_exchange_reachable_is_degraded(
    tmp_path: Path, live_okx_at: Callable[[str], None]
) -> None:
    with refused_port() as port:
        live_okx_at(f"ws://127.0.0.1:{port}/ws/v5/public")
        async with running_server(make_config(tmp_path, source="live")) as running:

            async def tried() -> bool:
                ingest = (await _get(running, "/v1/health")).json()["ingest"]
                return any(c["reconnects"] >= 1 for c in ingest)

            await _until(tried, "the OKX connection to fail at least once")
            response = await _get(running, "/v1/health")
            assert response.status_code == 200  # the verdict is in the body
            health = response.json()
            assert health["last_seq"] == 0
            assert health["status"] == "degraded"
            assert health["reasons"] == ["source live: no exchange connection is up (1 configured)"]
            assert (await _get(running, "/v1/ready")).status_code == 200  # it still serves
            metrics = (await _get(running, "/v1/metrics")).text
            assert 'purpleflea_ingest_connection_up{connection="okx"} 0' in metrics
            # Why it is down, as health's errors say: a series per connection and kind.
            errors = {
                labels: value
                for _, labels, value in parse_exposition(metrics)[
                    "purpleflea_ingest_connection_errors_total"
                ]
            }
            assert errors['{connection="okx",kind="unreachable"}'] >= 1


async def test_live_is_ok_while_an_exchange_talks(
    tmp_path: Path, live_okx_at: Callable[[str], None]
) -> None:
    frame = json.dumps({"arg": {"channel": "liquidation-orders", "instType": "SWAP"}, "data": []})
    async with FakeExchange(dialect_for("okx"), [frame]) as okx:
        live_okx_at(okx.url)
        async with running_server(make_config(tmp_path, source="live")) as running:

            async def ok() -> bool:
                return bool((await _get(running, "/v1/health")).json()["status"] == "ok")

            await _until(ok, "health ok once OKX is connected and has sent a frame")
            metrics = (await _get(running, "/v1/metrics")).text
    assert 'purpleflea_ingest_connection_up{connection="okx"} 1' in metrics
    assert 'purpleflea_ingest_events_total{connection="okx"} 0' in metrics
    assert 'purpleflea_ingest_dropped_total{connection="okx",reason="unsized"} 0' in metrics
    # A failure's first occurrence is an increase Prometheus can see: its series is there at 0.
    for kind in ("closed", "refused", "refused_retry", "unanswered", "unreachable"):
        assert (
            f'purpleflea_ingest_connection_errors_total{{connection="okx",kind="{kind}"}} 0\n'
            in metrics
        )


@pytest.mark.usefixtures("quick_warmup")
async def test_a_stopped_simulator_degrades_health(tmp_path: Path) -> None:
    config = make_config(tmp_path, source="sim", speed=5.0, sim_markets=10)
    async with running_server(config) as running:

        async def flowing() -> bool:
            # Health is ok from the start (the source runs); stored events say the simulator
            # is past its warm-up, whose thread a cancel would leave running (and teardown
            # would wait for).
            ok = (await _get(running, "/v1/health")).json()["status"] == "ok"
            return ok and running.server.tracker.last_seq > 0

        await _until(flowing, "the simulator's events to make health ok")
        source = running.server.source_task
        assert source is not None
        source.cancel()

        async def degraded() -> bool:
            return bool((await _get(running, "/v1/health")).json()["status"] == "degraded")

        await _until(degraded, "health to notice the simulator stopped")
        reasons = (await _get(running, "/v1/health")).json()["reasons"]
        assert reasons == ["source sim: not running (finished or failed; see the log)"]


async def test_readiness_answers_503_while_shutting_down(live: Running) -> None:
    ready = await _get(live, "/v1/ready")
    assert ready.status_code == 200
    assert ready.json() == {"ready": True, "reasons": []}
    live.server.stopping = True
    not_ready = await _get(live, "/v1/ready")
    assert not_ready.status_code == 503
    assert not_ready.json() == {"ready": False, "reasons": ["shutting down"]}
    assert (await _get(live, "/v1/health")).json()["status"] == "degraded"


@pytest.mark.usefixtures("quick_warmup")
async def test_health_says_how_far_the_simulators_warm_up_is(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A demo's user watched "Waiting for liquidations..." for ~15 s with nothing saying the
    # simulator was warming up: health says it, from the warm-up's own count of blocks.
    warm_up_paused = hold_warm_up_halfway(monkeypatch)
    config = make_config(tmp_path, source="sim", speed=5.0, sim_markets=10)
    async with running_server(config) as running:
        try:

            async def halfway() -> bool:
                status = (await _get(running, "/v1/health")).json()["source_status"]
                return bool(status["phase"] == "warming_up")

            await _until(halfway, "the warm-up's progress in health")
            status = (await _get(running, "/v1/health")).json()["source_status"]
            assert status["warm_up"] == {"blocks_done": 5, "blocks": 10}
            assert status["markets"] == 10
            assert "warming up its 10 markets" in status["message"]
            assert "50 % done" in status["message"]
        finally:
            warm_up_paused.set()

        async def flowing() -> bool:
            return running.server.tracker.last_seq > 0

        await _until(flowing, "the simulator's first liquidation")
        status = (await _get(running, "/v1/health")).json()["source_status"]
        assert status["phase"] == "running"
        assert status["message"] == ""  # nothing to explain once liquidations come


def test_the_simulators_status_before_its_first_liquidation() -> None:
    status = SimStatus(275)
    assert status.report(0, events=False)["message"] == "the simulator is starting"
    status.warming(0, 120)
    assert status.report(0, events=False)["message"].endswith("), 0 % done")
    status.warming(119, 120)
    assert status.report(0, events=False)["message"].endswith("), 99 % done")
    status.running(1_000_000, resumed=False)
    report = status.report(1_007_400, events=False)
    assert report["started_ms"] == 1_000_000
    assert report["message"] == (
        "the simulated market (275 markets) started 7 s ago; no liquidation yet"
    )
    status.running(1_000_000, resumed=True)
    assert "(275 markets) resumed 7 s ago" in str(status.report(1_007_400, events=False))
    assert status.report(1_007_400, events=True)["message"] == ""
