"""Measured heatmaps cross from the ingest node (sampling a fake Hyperliquid) to API nodes
over real NATS and answer the same bodies, for any low/high/bucket."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest

from purpleflea.engine.heatmap_feed import HeatmapFeed
from purpleflea.engine.measured_map import cut
from purpleflea.ingest.position_sampler import PositionSampler
from purpleflea.positions import MarketContext, MeasuredInputs, Position
from purpleflea.server.heatmap_relay import (
    PublishingSink,
    RelayedHeatmapModel,
    decode_view,
    encode_view,
)
from purpleflea.server.measured import MeasuredMaps
from purpleflea.server.measured_relay import (
    MeasuredRelay,
    RelayedMeasuredMaps,
    decode_inputs,
    encode_inputs,
)
from purpleflea.venues import registry
from tests.fakes.hyperliquid import FakeHyperliquid, HeldPosition
from tests.scaleout.cluster import Cluster, Node, cluster, until
from tests.scaleout.test_heatmap_relay import _feed_minutes

MARK = 90_000.0
# The answers a client can ask for: default, a bucket, a custom range, a range and a bucket.
QUERIES: list[dict[str, Any]] = [
    {},
    {"bucket": 1_000},
    {"low": 70_000, "high": 110_000},
    {"low": 85_123.5, "high": 99_001, "bucket": 333.3},
]
POSITIONS = {
    "0x" + "1" * 40: [HeldPosition("BTC", 2.0, MARK, 80_000.0, 10)],
    "0x" + "2" * 40: [HeldPosition("BTC", -1.0, MARK, 99_000.0, 10)],
    "0x" + "3" * 40: [HeldPosition("BTC", 0.7, 88_000.0, 79_950.5, 20, "isolated")],
    "0x" + "4" * 40: [HeldPosition("BTC", -0.3, 91_000.0, None, 2)],
}


async def _measured(http: httpx.AsyncClient, node: Node, key: str, **params: Any) -> Any:
    response = await http.get(
        f"{node.url}/v1/heatmap/BTC-PERP",
        params={"source": "measured", **params},
        headers={"Authorization": f"Bearer {key}"},
    )
    return response.status_code, response.json()


def _without_ts(body: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in body.items() if k != "ts"}


async def _same_answers(http: httpx.AsyncClient, c: Cluster, ingest: Node, api: Node) -> None:
    """Every query's body on ``api`` equals ``ingest``'s (floats compared exactly; ``ts`` is
    when the ingest node read what it published, not later than its own answer's)."""
    for query in QUERIES:
        status, relayed = await _measured(http, api, c.key, **query)
        assert status == 200, relayed
        _, own = await _measured(http, ingest, c.key, **query)
        assert _without_ts(relayed) == _without_ts(own), query
        assert relayed["ts"] <= own["ts"]


def _metric_lines(text: str) -> list[str]:
    return sorted(
        line
        for line in text.splitlines()
        if line.startswith(("measured_heatmap_coverage", "heatmap_estimate_vs_measured"))
    )


async def test_api_nodes_answer_the_ingest_nodes_measured_map(tmp_path: Path) -> None:
    async with (
        FakeHyperliquid(positions=POSITIONS, markets={"BTC": (MARK, 10.0)}) as fake,
        cluster(tmp_path) as c,
    ):
        # Role all: the ingest node's path (the one that samples and publishes) that also
        # answers clients, so its own answers can be compared.
        ingest = c.node(
            "ingest",
            "all",
            *("--source", "none", "--sample-positions", "--sample-coins", "BTC"),
            *("--sample-info-url", fake.info_url, "--sample-ws-url", fake.ws_url),
            data_dir="ingest",
        )
        api = c.node("api", "api", "--source", "none")
        await c.start(ingest, api)
        async with httpx.AsyncClient(timeout=10) as http:
            # Before the ingest node has sampled anything, the API node says so.
            status, body = await _measured(http, api, c.key)
            assert status == 404
            assert "ingest node has published none" in body["error"]["message"]

            await until(lambda: fake.subscribed("BTC"), 30, "the trades subscription")
            accounts = sorted(POSITIONS)
            await fake.trade("BTC", accounts[0], accounts[1])
            await fake.trade("BTC", accounts[2], accounts[3])

            async def sampled(node: Node) -> int:
                status, body = await _measured(http, node, c.key)
                return int(body["positions"]) if status == 200 else -1

            for _ in range(600):
                if await sampled(ingest) == 4 and await sampled(api) == 4:
                    break
                await asyncio.sleep(0.1)
            else:
                raise AssertionError(
                    f"the measured map never reached the API node: {await sampled(ingest)} "
                    f"positions on the ingest node, {await sampled(api)} on the API node; "
                    f"{ingest.health().get('bus')}\n{ingest.log.read_text()[-3000:]}"
                )
            await _same_answers(http, c, ingest, api)
            _, default = await _measured(http, api, c.key)
            assert default["source"] == "measured"
            assert (default["accounts"], default["coverage"]) == (4, pytest.approx(0.2))

            # /v1/markets and /v1/metrics on the API node list what the ingest node's do.
            headers = {"Authorization": f"Bearer {c.key}"}
            for path in ("/v1/markets",):
                own = (await http.get(f"{ingest.url}{path}", headers=headers)).json()
                relayed = (await http.get(f"{api.url}{path}", headers=headers)).json()
                assert relayed["measured_heatmaps"] == own["measured_heatmaps"] == ["BTC-PERP"]
            own_metrics = (await http.get(f"{ingest.url}/v1/metrics", headers=headers)).text
            api_metrics = (await http.get(f"{api.url}/v1/metrics", headers=headers)).text
            assert _metric_lines(api_metrics) == _metric_lines(own_metrics)
            assert 'measured_heatmap_coverage{market="BTC-PERP"} 0.2' in api_metrics

            # An API node started now gets the newest map at once (last value per market).
            late = c.node("late", "api", "--source", "none", data_dir="late")
            (tmp_path / "late").mkdir()
            await c.start(late)
            for _ in range(100):
                if (await _measured(http, late, c.key))[0] == 200:
                    break
                await asyncio.sleep(0.1)
            await _same_answers(http, c, ingest, late)
            # Published only on a change (the first API node saw each one), and a late node
            # reads the last one only.
            published = ingest.health()["bus"]["heatmap_measured_published"]
            await asyncio.sleep(2.5)  # publish rounds are 1 s apart; nothing changed
            assert ingest.health()["bus"]["heatmap_measured_published"] == published
            assert api.health()["bus"]["heatmap_measured_received"] == published
            assert late.health()["bus"]["heatmap_measured_received"] == 1


def _position(account: str, side: str, liquidation: float | None, usd: float) -> Position:
    return Position(
        account=account,
        exchange="sampled",
        symbol="BTC",
        market="BTC-PERP",
        side="long" if side == "long" else "short",
        size=usd / MARK,
        entry_price=MARK,
        margin="cross",
        leverage=10,
        liquidation_price=liquidation,
        notional_usd=usd,
    )


def test_the_wire_state_is_exact_and_cut_like_the_ingest_nodes() -> None:
    spread = [
        _position(f"0x{n:040x}", "long" if n % 3 else "short", MARK * (0.7 + n / 97), 0.1 + n / 7)
        for n in range(2_000)
    ]
    positions = (*spread, _position("0x" + "f" * 40, "long", None, 123.456))
    inputs = MeasuredInputs(
        market="BTC-PERP", ts=1, mark_price=MARK, open_interest_usd=9e6, positions=positions
    )
    data = encode_inputs(inputs)
    assert decode_inputs(data) == inputs
    maps = RelayedMeasuredMaps()
    maps.install(decode_inputs(data))
    assert maps.markets() == ("BTC-PERP",)
    for query in QUERIES:
        asked = {"low": None, "high": None, "bucket": None, **query}
        assert maps.heatmap("BTC-PERP", **asked) == cut(inputs, **asked)
    with pytest.raises(LookupError, match="has published none"):
        maps.heatmap("ETH-PERP", low=None, high=None, bucket=None)
    with pytest.raises(ValueError, match="not a measured state"):
        decode_inputs(b"\x01garbage")


def test_relayed_metrics_equal_the_sampling_nodes() -> None:
    """``/v1/metrics``' coverage and estimate-vs-measured lines from relayed estimates and
    relayed positions equal the sampling node's, from its model and its sampler."""
    feed = HeatmapFeed()
    _feed_minutes(PublishingSink(feed), range(4))
    sampler = PositionSampler(registry.position_sources()[0], coins=("BTC",), clock=lambda: 7)
    mark = feed.model.heatmap("BTC-PERP").mark_price
    sampler.contexts["BTC-PERP"] = MarketContext(
        market="BTC-PERP", mark_price=mark, open_interest=300.0, open_interest_usd=300 * mark
    )
    for n in range(60):
        side = "long" if n % 2 else "short"
        away = (0.02 + n / 400) * (-1 if side == "long" else 1)
        sampler.schedule.polled(
            f"0x{n:040x}", [_position(f"0x{n:040x}", side, mark * (1 + away), 1e4 + n)], 0
        )
    own = MeasuredMaps((sampler,))

    model, maps = RelayedHeatmapModel(), RelayedMeasuredMaps()
    model.install(*decode_view(encode_view("BTC-PERP", feed.model._view("BTC-PERP"))))
    maps.install(decode_inputs(encode_inputs(sampler.measured_inputs("BTC-PERP"))))
    relayed = maps.metrics(model)
    # The sampler's account count is the sampling node's own state, not in what it relays:
    # the API node has no sampler and shows the family without samples.
    local = "position_sampler_accounts"
    assert [s for name, _, _, s in relayed if name == local] == [[]]
    assert [s for name, _, _, s in own.metrics(feed.model) if name == local] == [
        [('{exchange="hyperliquid"}', 60.0)]
    ]
    assert [m for m in relayed if m[0] != local] == [
        m for m in own.metrics(feed.model) if m[0] != local
    ]
    spearman = {name: samples for name, _, _, samples in relayed}
    assert spearman["heatmap_estimate_vs_measured_spearman"]  # scored, not left out


def test_an_api_node_forgets_a_market_the_ingest_node_stopped_publishing() -> None:
    # The ingest node drops a coin no asset context listed for a day (a delisted coin), but
    # an API node kept the last state it was sent: it listed that measured map for good, at
    # the mark of its delisting. By the same rule, against the newest state's time.
    day = 24 * 3_600_000
    t0 = 1_700_000_000_000

    def state(market: str, ts: int) -> MeasuredInputs:
        return MeasuredInputs(
            market=market, ts=ts, mark_price=MARK, open_interest_usd=1e9, positions=()
        )

    maps = RelayedMeasuredMaps()
    maps.install(state("ETH-PERP", t0))
    maps.install(state("BTC-PERP", t0 + day - 1))
    assert maps.markets() == ("BTC-PERP", "ETH-PERP")
    maps.install(state("BTC-PERP", t0 + day + 3_600_000))
    assert maps.markets() == ("BTC-PERP",)


async def test_the_ingest_node_forgets_what_it_sent_of_a_market_its_samplers_dropped() -> None:
    # publish_changes remembers each market's last state sent, to send only changes: a
    # market the sampler dropped (a delisted coin) kept its state, up to ~16,000 positions,
    # for good, and listed again unchanged it was never sent again.
    listed = {"BTC-PERP", "ETH-PERP"}
    asked = [0]

    class Sampler:
        def markets(self) -> tuple[str, ...]:
            asked[0] += 1
            return tuple(sorted(listed))

        def measured_inputs(self, market: str) -> MeasuredInputs:
            return MeasuredInputs(
                market=market, ts=1, mark_price=MARK, open_interest_usd=1e9, positions=()
            )

    class Js:
        async def publish(self, subject: str, data: bytes, timeout: float) -> None:
            pass

    client = SimpleNamespace(is_connected=True, max_payload=1 << 20)
    relay = MeasuredRelay(SimpleNamespace(client=client, js=Js(), prefix="pf"))  # type: ignore[arg-type]
    maps = SimpleNamespace(samplers=[Sampler()])
    task = asyncio.create_task(relay.publish_changes(maps, interval=0.001))  # type: ignore[arg-type]
    try:
        await until(lambda: relay.counters["measured_published"] == 2, 10, "both sent")
        listed.discard("ETH-PERP")
        rounds = asked[0]
        await until(lambda: asked[0] >= rounds + 2, 10, "a round without ETH-PERP")
        listed.add("ETH-PERP")
        await until(lambda: relay.counters["measured_published"] == 3, 10, "ETH-PERP again")
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
