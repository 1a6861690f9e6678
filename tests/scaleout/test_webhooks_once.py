"""Webhooks in a scale-out: made on either API node, delivered once by the ingest node (not
once per API node), their dead letters readable and replayable on any node."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx
import psycopg
import pytest

import purpleflea
from purpleflea.server.webhook_policy import WebhookSettings
from purpleflea.store.webhooks import DeadLetter, open_webhook_store
from tests.scaleout.cluster import cluster, until
from tests.server.conftest import T0, make_config, running_server, venue_event
from tests.server.test_webhooks import GAPPY, check_every_item_once_through_cuts
from tests.server.test_webhooks import _create as create_webhook
from tests.server.webhook_receiver import receiver
from tests.services import TcpRelay


def _liquidation_seqs(store_url: str) -> set[int]:
    with psycopg.connect(store_url) as connection:
        return {int(row[0]) for row in connection.execute("SELECT seq FROM liquidations")}


async def test_webhooks_are_delivered_once_by_the_ingest_node(tmp_path: Path) -> None:
    async with cluster(tmp_path) as services, receiver() as good, receiver(then=500) as down:
        ingest = services.node(
            "ingest",
            "ingest",
            # 5x: the crash episode at 60x outran the 1,000-item webhook queue (overflow dead
            # letters, no retries), which this test is not about.
            *("--source", "sim", "--markets", "3", "--speed", "5"),
            *("--webhook-attempts", "2", "--webhook-backoff", "0.01"),
            data_dir="ingest",
        )
        node_a, node_b = services.node("api-a", "api"), services.node("api-b", "api")
        await services.start(node_a, node_b, ingest)
        headers = {"X-API-Key": services.key}
        async with httpx.AsyncClient(headers=headers, timeout=10) as http:
            made = (await http.post(f"{node_a.url}/v1/webhooks", json={"url": good.url})).json()
            good.secret = made["secret"]
            failing = (await http.post(f"{node_b.url}/v1/webhooks", json={"url": down.url})).json()
            down.secret = failing["secret"]
            # Both nodes list both: the list lives in the shared store.
            for node in (node_a, node_b):
                listed = (await http.get(f"{node.url}/v1/webhooks")).json()["webhooks"]
                assert {w["id"] for w in listed} == {made["id"], failing["id"]}

            await until(lambda: len(good.deliveries) >= 40, 60, "40 deliveries")
            await until(lambda: len(down.deliveries) >= 4, 60, "two failed deliveries")

            # Dead letters of the webhook made on B, read and replayed through A.
            letters_url = f"{node_a.url}/v1/webhooks/{failing['id']}/dead-letters"
            for _ in range(120):  # 4 requests a second: well inside the key's rate limit
                response = await http.get(letters_url)
                assert response.status_code == 200, response.text
                listing = response.json()
                if listing["total"] >= 2:
                    break
                await asyncio.sleep(0.25)
            assert listing["total"] >= 2
            assert all(x["attempts"] == 2 for x in listing["dead_letters"])
            down.then = 200
            replay = (await http.post(f"{letters_url}/replay", params={"limit": 2})).json()
            assert replay["delivered"] == 2
            assert replay["failed"] is None

            metrics = (await http.get(f"{ingest.url}/v1/metrics")).text
            assert 'purpleflea_webhook_deliveries_total{outcome="delivered"}' in metrics
            for node in (node_a, node_b):  # no dispatcher runs on an API node
                assert (
                    "webhook_deliveries_total"
                    not in (await http.get(f"{node.url}/v1/metrics")).text
                )

        # Once each, in seq order, and none missing between the first and the last: the
        # ingest node delivered every stored event, and no API node delivered any again.
        seqs = [int(d.event_id) for d in good.deliveries[:40]]
        assert all(d.verified and d.status == 200 for d in good.deliveries)
        assert seqs == sorted(set(seqs))
        stored = _liquidation_seqs(services.store_url)
        assert {s for s in stored if seqs[0] <= s <= seqs[-1]} == set(seqs)


async def test_two_api_nodes_never_replay_one_webhook_s_dead_letters_at_once(
    tmp_path: Path,
) -> None:
    """The replay guard was a set in each process: asked on two API nodes at once, both sent
    the same letters (duplicates at the receiver). Two app instances on one PostgreSQL store:
    while node A replays, node B answers 409 replay_in_progress and sends nothing."""
    async with cluster(tmp_path) as services, receiver() as box:
        nodes = [
            make_config(
                tmp_path / name,
                role="api",
                source="none",
                store_url=services.store_url,
                bus_url=services.bus_url,
                webhooks=WebhookSettings(timeout_s=10.0),
                rate_per_s=1_000.0,
                rate_burst=1_000.0,
            )
            for name in ("api-a", "api-b")
        ]
        async with running_server(nodes[0]) as node_a, running_server(nodes[1]) as node_b:
            headers = {"X-API-Key": services.key}
            async with httpx.AsyncClient(headers=headers, timeout=20) as http:
                made = await http.post(f"{node_a.url}/v1/webhooks", json={"url": box.url})
                assert made.status_code == 201, made.text
                webhook_id, box.secret = made.json()["id"], made.json()["secret"]
                store = open_webhook_store(services.store_url)
                letters = [
                    DeadLetter(
                        webhook_id=webhook_id,
                        seq=seq,
                        body=b'{"type":"liquidation","data":{"seq":%d}}' % seq,
                        attempts=3,
                        error="HTTP 500",
                        failed_at=1_760_000_000_000,
                    )
                    for seq in (1, 2, 3)
                ]
                await store.add_dead_letters(letters, keep=10)
                await store.close()
                box.hold = asyncio.Event()
                path = f"/v1/webhooks/{webhook_id}/dead-letters/replay"
                first = asyncio.create_task(http.post(f"{node_a.url}{path}"))
                await until(lambda: box.waiting == 1, 20, "node A's first letter at the receiver")
                second = asyncio.create_task(http.post(f"{node_b.url}{path}"))
                done, _ = await asyncio.wait({second}, timeout=5)
                box.hold.set()
                answers = [(await first), (await second)]
                assert done, "node B's replay waited on the receiver: it was sending too"
                assert answers[1].status_code == 409, answers[1].text
                assert answers[1].json()["error"]["code"] == "replay_in_progress"
                assert answers[0].json()["delivered"] == 3
                assert sorted(int(d.event_id) for d in box.deliveries) == [1, 2, 3]
                # Released at the end: node B may replay now (nothing is left to send).
                again = await http.post(f"{node_b.url}{path}")
                assert again.status_code == 200, again.text
                assert again.json()["remaining"] == 0


async def test_the_sequencing_node_fills_the_gap_when_the_bus_cuts_its_subscription(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The dispatcher of a node that sequences on PostgreSQL and JetStream (role ``all``
    here, to serve the webhook routes too; ``ingest`` builds the same one) is the single
    machine's: a cut subscription is filled from PostgreSQL, and what the new subscription
    brings again (items JetStream had not handed over when it subscribed) is not sent twice."""
    async with cluster(tmp_path) as services:
        config = make_config(
            tmp_path / "all",
            source="none",
            store_url=services.store_url,
            bus_url=services.bus_url,
            webhooks=GAPPY,
            rate_per_s=1_000.0,
            rate_burst=1_000.0,
        )
        async with running_server(config) as ingest:
            # JetStream hands the node's own messages back one publish (and its ack) at a
            # time: the dispatcher keeps up with them, so the subscription is cut for it.
            await check_every_item_once_through_cuts(ingest, caplog, cut_every_s=0.02)


async def _stream(url: str, key: str, since_seq: int, into: list[int]) -> None:
    client = purpleflea.LiquidationClient(api_key=key, base_url=url)
    async with client.stream(since_seq=since_seq, max_backoff=0.3) as stream:
        async for item in stream:
            into.append(item.seq)


async def test_events_stored_while_nats_was_away_are_delivered_once_it_is_back(
    tmp_path: Path,
) -> None:
    """The sequencing node's connection to NATS is cut while events come: stored in
    PostgreSQL, not published. Its webhooks, an API node's live stream client and a client
    resuming there during the outage got them only when the next event came after NATS was
    back (the bus's backfill at the jump in seq); with none, never. Now they are published
    from the store once NATS is back and each gets them once, in seq order."""
    async with cluster(tmp_path) as services, receiver() as box:
        parts = urlsplit(services.bus_url)
        relay = TcpRelay(parts.hostname or "127.0.0.1", parts.port or 4222)
        await relay.open()
        config = make_config(
            tmp_path / "all",
            source="none",
            store_url=services.store_url,
            bus_url=urlunsplit(parts._replace(netloc=f"127.0.0.1:{relay.port}")),
            rate_per_s=1_000.0,
            rate_burst=1_000.0,
        )
        api_config = make_config(
            tmp_path / "api", role="api", store_url=services.store_url, bus_url=services.bus_url
        )
        live: list[int] = []
        resumed: list[int] = []
        readers: list[asyncio.Task[None]] = []
        try:
            async with running_server(config) as ingest, running_server(api_config) as api:
                await create_webhook(ingest, box)
                readers.append(asyncio.create_task(_stream(api.url, api.key, 0, live)))
                await ingest.push(*(venue_event(ts=T0 + n) for n in range(3)))
                await until(lambda: len(box.deliveries) == 3, 30, "the first 3 deliveries")
                await until(lambda: len(live) == 3, 30, "the first 3 on the stream")
                await relay.cut()
                bus = ingest.server.bus
                await until(lambda: not bus.connected, 10, "the cut")
                await ingest.push(*(venue_event(ts=T0 + n) for n in range(3, 10)))
                assert ingest.server.tracker.counters["stored_unpublished"] == 7
                readers.append(asyncio.create_task(_stream(api.url, api.key, 2, resumed)))
                await until(lambda: len(resumed) >= 1, 30, "the resumed client's replay")
                await relay.open()
                # No event after the outage: the 7 stored meanwhile must come anyway.
                with contextlib.suppress(AssertionError):
                    await until(
                        lambda: len(box.deliveries) >= 10 and len(live) >= 10 and len(resumed) >= 8,
                        30,
                        "the 7 stored meanwhile",
                    )
                await asyncio.sleep(0.5)  # nothing more comes
                async with httpx.AsyncClient(timeout=5) as http:
                    health = (await http.get(f"{ingest.url}/v1/health")).json()
                for reader in readers:
                    reader.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await reader
        finally:
            for reader in readers:
                reader.cancel()
            await relay.close()
    got = {"webhook": [int(d.event_id) for d in box.deliveries], "live": live, "resumed": resumed}
    assert got == {"webhook": [*range(1, 11)], "live": [*range(1, 11)], "resumed": [*range(3, 11)]}
    assert all(d.verified and d.status == 200 for d in box.deliveries)
    assert health["bus"]["republished"] == 7
    assert health["bus"]["unpublished_seqs"] == 0
