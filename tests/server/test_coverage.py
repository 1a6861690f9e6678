"""Coverage through the real server on the simulated market: every event says how complete its
venue's feed is, filters select by it, and aggregates carry the estimate beside the measure."""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from purpleflea.ingest.uptime import Ledger
from purpleflea.server.coverage import CoverageService
from tests.server.conftest import Running, make_config, running_server

TIMEOUT_S = 60.0


async def _get(running: Running, path: str, **params: Any) -> Any:
    headers = {"Authorization": f"Bearer {running.key}"}
    async with httpx.AsyncClient(base_url=running.url, timeout=10, headers=headers) as http:
        response = await http.get(path, params=params)
    assert response.status_code == 200, response.text
    return response.json()


async def _events_of(running: Running, exchange: str) -> list[dict[str, Any]]:
    deadline = time.monotonic() + TIMEOUT_S
    while True:
        events: list[dict[str, Any]] = (
            await _get(running, "/v1/liquidations", exchange=exchange, limit=1000)
        )["events"]
        if events:
            return events
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for simulated {exchange} events")
        await asyncio.sleep(0.1)


@pytest.mark.usefixtures("quick_warmup")
async def test_simulated_events_carry_their_venues_coverage_and_aggregates_the_estimate(
    tmp_path: Path,
) -> None:
    config = make_config(tmp_path, source="sim", speed=20.0, sim_markets=10)
    async with running_server(config) as running:
        binance = await _events_of(running, "binance_usdm")
        bybit = await _events_of(running, "bybit")
        assert {e["coverage"] for e in binance} == {"snapshot"}
        assert {e["coverage"] for e in bybit} == {"complete"}

        complete = (await _get(running, "/v1/liquidations", coverage="complete", limit=1000))[
            "events"
        ]
        assert complete
        assert {e["coverage"] for e in complete} == {"complete"}
        assert "binance_usdm" not in {e["exchange"] for e in complete}

        body = await _get(running, "/v1/liquidations/aggregate", interval="1m", group_by="exchange")
        buckets = body["buckets"]
        assert buckets
        for bucket in buckets:
            assert bucket["est_size_usd"] >= bucket["size_usd"], bucket
            assert bucket["est_count"] >= bucket["count"], bucket
            if bucket["group"] == "bybit":  # complete: nothing hidden, nothing added
                assert bucket["est_size_usd"] == bucket["size_usd"], bucket
        snapshot = [b for b in buckets if b["group"] == "binance_usdm"]
        assert snapshot
        # How much it adds depends on how busy the simulated seconds were (tests/engine covers
        # the amounts); here: the field is there and never below the measure.
        only_snapshot = await _get(
            running,
            "/v1/liquidations/aggregate",
            interval="1m",
            group_by="exchange",
            coverage="snapshot",
        )
        groups = {b["group"] for b in only_snapshot["buckets"]}
        assert "binance_usdm" in groups
        assert "bybit" not in groups


class _FullDisk:
    """A coverage store whose disk is full until ``free`` is set."""

    def __init__(self) -> None:
        self.free = False
        self.recorded = 0

    async def record(self, hours: object, gaps: object) -> None:
        if not self.free:
            raise OSError(28, "No space left on device")
        self.recorded += 1

    async def close(self) -> None:
        pass


async def test_a_failing_coverage_store_logs_one_line_per_outage_without_a_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = _FullDisk()
    ledger = Ledger()
    ledger.watch("binance_usdm", "binance_usdm", 1_000)
    service = CoverageService(store, ledger, clock=lambda: 2_000)  # type: ignore[arg-type]
    with caplog.at_level(logging.INFO, logger="purpleflea"):
        for _ in range(5):
            await service.flush()
        store.free = True
        await service.flush()
        await service.flush()
    lines = [r for r in caplog.records if r.name.startswith("purpleflea")]
    assert [r.levelno for r in lines] == [logging.ERROR, logging.WARNING], lines
    assert "No space left on device" in lines[0].getMessage()
    assert lines[0].exc_info is None
    assert "recovered" in lines[1].getMessage()
    assert store.recorded == 2


async def test_the_recovery_line_says_how_many_drains_failed(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """As the store's and the bus's recovery lines do: how many failed, not only that it
    recovered. A second outage is counted on its own."""
    store = _FullDisk()
    ledger = Ledger()
    ledger.watch("binance_usdm", "binance_usdm", 1_000)
    service = CoverageService(store, ledger, clock=lambda: 2_000)  # type: ignore[arg-type]
    with caplog.at_level(logging.INFO, logger="purpleflea"):
        for failures in (3, 1):
            store.free = False
            for _ in range(failures):
                await service.flush()
            store.free = True
            await service.flush()
    recovered = [r.getMessage() for r in caplog.records if "recovered" in r.getMessage()]
    assert len(recovered) == 2, recovered
    assert recovered[0].startswith("coverage: recording recovered after ")
    assert recovered[0].endswith(" s (3 failed drains)")
    assert recovered[1].endswith(" s (1 failed drains)")
