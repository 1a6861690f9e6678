"""``GET /v1/coverage``: per exchange-hour uptime and pressure and the gaps, as recorded by
the node's ledger; the simulator records its own (always up, no gaps)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx
import pytest

import purpleflea
from purpleflea.client import Coverage
from purpleflea.commands import importer
from purpleflea.history_io import parse_recorder_csv
from purpleflea.ingest import repair
from purpleflea.ingest.uptime import HOUR_MS
from purpleflea.venues import registry
from purpleflea.venues.venue import Absent
from tests.conftest import shared_dir
from tests.server.conftest import Running, make_config, running_server

H = 1_760_000_000_000 - 1_760_000_000_000 % HOUR_MS


def _headers(live: Running) -> dict[str, str]:
    return {"Authorization": f"Bearer {live.key}"}


async def test_recorded_hours_and_gaps_are_served(live: Running) -> None:
    coverage = live.server.coverage
    assert coverage is not None
    assert coverage.ledger is not None
    ledger = coverage.ledger
    ledger.up("binance_usdm", "binance_usdm", H)
    for second in range(10):
        ledger.event("binance_usdm", "BTCUSDT", H + second * 1_000)
    ledger.event("binance_usdm", "ETHUSDT", H)
    ledger.down("binance_usdm", "binance_usdm", H + 20_000, "silent")
    gap = ledger.up("binance_usdm", "binance_usdm", H + 30_000)
    assert gap is not None
    ledger.settle(gap)
    coverage.clock = lambda: H + 40_000
    await coverage.flush()
    async with httpx.AsyncClient(base_url=live.url, headers=_headers(live)) as http:
        answer = await http.get("/v1/coverage", params={"start": H, "end": H + HOUR_MS})
        assert answer.status_code == 200, answer.text
        body = answer.json()
        other = await http.get("/v1/coverage", params={"exchange": "bybit", "start": H})
        unknown = await http.get("/v1/coverage", params={"exchange": "nope"})
        inverted = await http.get("/v1/coverage", params={"start": H, "end": H - 1})
        keyless = await httpx.AsyncClient(base_url=live.url).get("/v1/coverage")
    assert body["hours"] == [
        {
            "exchange": "binance_usdm",
            "hour": H,
            "uptime": 0.75,  # up 30 of the 40 s watched
            "up_s": 30.0,
            "connections": 1,
            "symbol_seconds": 11,
            "symbols": 2,
            "pressure": round(11 / (2 * 30), 6),
        }
    ]
    assert body["gaps"] == [
        {
            "id": f"binance_usdm:{H}",
            "exchange": "binance_usdm",
            "connection": "binance_usdm",
            "start": H,
            "end": H + 30_000,
            "reason": "silent",
            "repair": "pending",
            "repaired_events": 0,
            "note": "",
        }
    ]
    assert other.json()["hours"] == other.json()["gaps"] == []
    assert (unknown.status_code, inverted.status_code, keyless.status_code) == (400, 400, 401)
    async with purpleflea.LiquidationClient(api_key=live.key, base_url=live.url) as client:
        typed = await client.coverage(exchange="binance_usdm", start=H, end=H + HOUR_MS)
    assert isinstance(typed, Coverage)
    assert [(h.exchange, h.uptime, h.pressure) for h in typed.hours] == [
        ("binance_usdm", 0.75, body["hours"][0]["pressure"])
    ]
    assert [(g.reason, g.end, g.repair) for g in typed.gaps] == [("silent", H + 30_000, "pending")]


@pytest.mark.usefixtures("quick_warmup")
async def test_the_simulator_records_its_own_uptime(tmp_path: Path) -> None:
    config = make_config(tmp_path, source="sim", sim_markets=3, speed=60.0)
    async with running_server(config) as live:
        coverage = live.server.coverage
        assert coverage is not None
        deadline = time.monotonic() + 20
        hours: list[dict[str, object]] = []
        async with httpx.AsyncClient(base_url=live.url, headers=_headers(live)) as http:
            while time.monotonic() < deadline:
                await coverage.flush()
                body = (await http.get("/v1/coverage")).json()
                hours = body["hours"]
                if any(h["exchange"] == "binance_usdm" and h["symbol_seconds"] for h in hours):
                    break
                await asyncio.sleep(0.1)
        assert body["gaps"] == []
        by_exchange = {h["exchange"]: h for h in hours}
        assert {"binance_usdm", "bybit"} <= set(by_exchange)
        assert all(h["uptime"] == 1.0 for h in hours)
        assert by_exchange["binance_usdm"]["pressure"] is not None
        assert by_exchange["bybit"]["pressure"] is None  # complete: no throttle to measure


async def test_repaired_and_open_gaps_are_served_with_their_outcome(live: Running) -> None:
    """A repaired gap says how many events the REST history gave; one on a venue without a
    REST history stays open and says why (the venue's Absent reason, as ingest records it)."""
    coverage = live.server.coverage
    assert coverage is not None
    assert coverage.ledger is not None
    ledger = coverage.ledger
    outcomes = {}
    for exchange in ("okx", "bybit"):
        ledger.up(exchange, exchange, H)
        ledger.down(exchange, exchange, H + 10_000, "closed")
        gap = ledger.up(exchange, exchange, H + 12_000)
        assert gap is not None
        source = registry.REPAIRS[exchange]
        if isinstance(source, Absent):  # no request is made: the plan says why
            async with httpx.AsyncClient() as client:
                outcomes[exchange] = await repair.repair(
                    gap, source, client, {}, lambda _e: True, H + 13_000
                )
        else:
            outcomes[exchange] = repair.settled(gap, events=3)
        ledger.settle(outcomes[exchange])
    coverage.clock = lambda: H + 20_000
    await coverage.flush()
    async with httpx.AsyncClient(base_url=live.url, headers=_headers(live)) as http:
        body = (await http.get("/v1/coverage", params={"start": H})).json()
    gaps = {g["exchange"]: g for g in body["gaps"]}
    assert (gaps["okx"]["repair"], gaps["okx"]["repaired_events"]) == ("repaired", 3)
    bybit = registry.REPAIRS["bybit"]
    assert isinstance(bybit, Absent)
    assert (gaps["bybit"]["repair"], gaps["bybit"]["repaired_events"]) == ("open", 0)
    assert gaps["bybit"]["note"] == f"no REST history: {bybit.reason}"
    assert gaps["okx"]["end"] == gaps["bybit"]["end"] == H + 12_000


async def test_imported_hours_are_served_with_their_events_and_coverage_class(
    tmp_path: Path,
) -> None:
    """``purpleflea import`` of a recording left ``/v1/coverage`` empty for its hours: a user
    asking how complete imported history is got nothing. Each hour now says what the file
    holds (events, first and last ts), its coverage class, and that no uptime is known."""
    recording = shared_dir() / "data" / "real" / "riftfern_data-streams" / "binance.csv"
    with recording.open() as handle:
        parsed = parse_recorder_csv("binance-csv", handle, source=str(recording))
    unique = {e.id: e.ts for e in parsed.events}
    per_hour: dict[int, list[int]] = {}
    for ts in unique.values():
        per_hour.setdefault(ts - ts % HOUR_MS, []).append(ts)
    expected = [
        {
            "exchange": "binance_usdm",
            "hour": hour,
            "coverage": "snapshot",
            "events": len(times),
            "first": min(times),
            "last": max(times),
            "uptime": None,
        }
        for hour, times in sorted(per_hour.items())
    ]
    await importer.import_files([recording], tmp_path)
    await importer.import_files([recording], tmp_path)  # again: nothing new, nothing added
    start, end = expected[0]["hour"], expected[-1]["hour"] + HOUR_MS
    async with running_server(make_config(tmp_path)) as live:
        async with httpx.AsyncClient(base_url=live.url, headers=_headers(live)) as http:
            body = (await http.get("/v1/coverage", params={"start": start, "end": end})).json()
            bybit = await http.get(
                "/v1/coverage", params={"start": start, "end": end, "exchange": "bybit"}
            )
        async with purpleflea.LiquidationClient(api_key=live.key, base_url=live.url) as client:
            typed = await client.coverage(start=start, end=end)
    assert len(expected) > 3
    assert sum(h["events"] for h in expected) == len(unique)
    assert body["imported"] == expected
    assert body["hours"] == body["gaps"] == []
    assert bybit.json()["imported"] == []
    assert [(i.hour, i.events, i.coverage, i.uptime) for i in typed.imported] == [
        (h["hour"], h["events"], "snapshot", None) for h in expected
    ]
