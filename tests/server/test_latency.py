"""The per-stage latency budget in /v1/metrics: receive -> persisted -> published -> written."""

from __future__ import annotations

import asyncio
import json
import re

import httpx
import pytest
from websockets.asyncio.client import connect

from purpleflea.clock import now_ms
from purpleflea.server.latency import StageLatency
from tests.server.conftest import Running, venue_event


def _histogram(metrics: str, stage: str) -> dict[str, float]:
    """``le`` -> cumulative count of one stage, plus ``count`` and ``sum``."""
    found: dict[str, float] = {}
    for name, labels, value in re.findall(
        r"^purpleflea_stage_latency_seconds_(\w+)\{([^}]*)\} (\S+)$", metrics, re.M
    ):
        if f'stage="{stage}"' not in labels:
            continue
        le = re.search(r'le="([^"]+)"', labels)
        found[le.group(1) if le else name] = float(value)
    return found


def test_buckets_are_cumulative_and_quantiles_name_their_bucket() -> None:
    latency = StageLatency()
    latency.observe("persisted", 0.003, times=98)
    latency.observe("persisted", 0.2, times=2)
    assert latency.count("persisted") == 100
    assert latency.quantile("persisted", 0.5) == 0.005
    assert latency.quantile("persisted", 0.99) == 0.25
    assert latency.count("written") == 0
    assert latency.quantile("written", 0.99) == 0.0
    [(name, kind, _, samples)] = latency.metrics()
    assert (name, kind) == ("stage_latency_seconds", "histogram")
    rows = dict(samples)
    assert rows['_bucket{stage="persisted",le="0.0025"}'] == 0
    assert rows['_bucket{stage="persisted",le="0.005"}'] == 98
    assert rows['_bucket{stage="persisted",le="0.25"}'] == 100
    assert rows['_bucket{stage="persisted",le="+Inf"}'] == 100
    assert rows['_count{stage="persisted"}'] == 100
    assert rows['_sum{stage="persisted"}'] == pytest.approx(98 * 0.003 + 2 * 0.2)
    with pytest.raises(ValueError, match="unknown latency stage 'parsed'"):
        latency.observe("parsed", 0.1)


async def test_metrics_show_where_each_live_event_spent_its_time(live: Running) -> None:
    headers = {"Authorization": f"Bearer {live.key}"}
    async with connect(live.ws_url, additional_headers=headers) as ws:
        await ws.send(json.dumps({"op": "subscribe"}))
        assert json.loads(await ws.recv())["type"] == "subscribed"
        # Received by a venue connection 300 ms ago: that time is the persisted stage's.
        for _ in range(3):
            live.server.tracker.submit(venue_event(), received_at=now_ms() - 300)
        await live.server.tracker.drain()
        got = []
        while len(got) < 3:
            frame = json.loads(await asyncio.wait_for(ws.recv(), 5))
            if frame["type"] == "liquidation":
                got.append(frame)
        # A resuming client's replayed events come from storage, not live: not "written".
        async with connect(live.ws_url, additional_headers=headers) as again:
            await again.send(json.dumps({"op": "subscribe", "since_seq": 0}))
            replayed = 0
            while replayed < 3:
                if json.loads(await asyncio.wait_for(again.recv(), 5))["type"] == "liquidation":
                    replayed += 1
    async with httpx.AsyncClient(base_url=live.url) as http:
        metrics = (await http.get("/v1/metrics")).text
    assert "# TYPE purpleflea_stage_latency_seconds histogram" in metrics
    persisted = _histogram(metrics, "persisted")
    assert persisted["count"] == 3
    assert persisted["0.25"] == 0  # not one of them took less than the 300 ms it was given
    assert persisted["+Inf"] == 3
    # 300 ms each at least; exactly that when persisted within the millisecond of the submit
    # (a lone event goes at once), give or take the float sum of 3 x 0.3.
    assert 0.9 - 1e-9 <= persisted["sum"] < 3 * 5.0
    published = _histogram(metrics, "published")
    assert published["count"] == 3
    assert published["1"] == 3
    written = _histogram(metrics, "written")
    assert written["count"] == 3
    assert written["1"] == 3


async def test_persisted_counts_every_event_of_a_batch_at_its_own_receive_time(
    live: Running,
) -> None:
    # One batch whose events came in runs of one receive time (a venue frame, one wakeup's
    # burst), the runs not in order: each event counts once, in its own run's bucket.
    now = now_ms()
    for ago_ms in (300, 300, 3_000, 300, 7_000, 7_000, 7_000):
        live.server.tracker.submit(venue_event(), received_at=now - ago_ms)
    await live.server.tracker.drain()
    async with httpx.AsyncClient(base_url=live.url) as http:
        persisted = _histogram((await http.get("/v1/metrics")).text, "persisted")
    assert persisted["count"] == 7
    assert persisted["0.25"] == 0
    assert persisted["1"] == 3  # the three 300 ms ones (and the batch took < 0.7 s)
    assert persisted["5"] == 4  # and the 3 s one
    assert persisted["10"] == 7
    assert 3 * 0.3 + 3.0 + 3 * 7.0 <= persisted["sum"] < 3 * 0.3 + 3.0 + 3 * 7.0 + 7 * 0.7
