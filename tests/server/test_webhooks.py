"""Webhooks end to end: a real server, events pushed through its tracker, and a local receiver
(tests/server/webhook_receiver.py) that verifies every signature and fails on purpose."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import sqlite3
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest

from purpleflea.client import LiquidationClient
from purpleflea.model import CascadeAlert, Liquidation, VenueLiquidation
from purpleflea.server import webhook_sender
from purpleflea.server.config import ServerConfig
from purpleflea.server.webhook_policy import WebhookSettings
from purpleflea.server.webhook_sender import Sender
from purpleflea.store.webhooks import Webhook, open_webhook_store
from tests.server.conftest import T0, Running, make_config, running_server, venue_event
from tests.server.webhook_receiver import Receiver, receiver, until

#: Short backoffs so retries take milliseconds; three attempts per delivery.
FAST = WebhookSettings(attempts=3, backoff_s=0.01, backoff_max_s=0.05, timeout_s=5.0)


@pytest.fixture
async def hooked(tmp_path: Path) -> AsyncIterator[Running]:
    async with running_server(_config(tmp_path, FAST)) as running:
        yield running


def _client(running: Running, key: str | None = None) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=running.url, headers={"Authorization": f"Bearer {key or running.key}"}
    )


async def _create(running: Running, box: Receiver, **fields: Any) -> dict[str, Any]:
    async with _client(running) as http:
        response = await http.post("/v1/webhooks", json={"url": box.url, **fields})
    assert response.status_code == 201, response.text
    made: dict[str, Any] = response.json()
    box.secret = made["secret"]
    return made


async def _dead_letters(running: Running, webhook_id: str, key: str | None = None) -> Any:
    async with _client(running, key) as http:
        return await http.get(f"/v1/webhooks/{webhook_id}/dead-letters")


async def _letters_when(running: Running, webhook_id: str, total: int) -> dict[str, Any]:
    """The dead-letter listing, once it holds ``total`` (polled through the API)."""
    for _ in range(300):
        response = await _dead_letters(running, webhook_id)
        assert response.status_code == 200, response.text
        listing: dict[str, Any] = response.json()
        if listing["total"] >= total:
            return listing
        await asyncio.sleep(0.1)
    raise AssertionError(f"{webhook_id} never had {total} dead letters: {listing}")


def _config(tmp_path: Path, settings: WebhookSettings) -> ServerConfig:
    # Polling the API must not hit the per-key rate limit on a slow machine.
    return make_config(tmp_path, webhooks=settings, rate_per_s=1_000.0, rate_burst=1_000.0)


async def _metrics(running: Running) -> str:
    async with httpx.AsyncClient(base_url=running.url) as http:
        return (await http.get("/v1/metrics")).text


async def test_failed_deliveries_are_retried_and_delivered_once(hooked: Running) -> None:
    async with receiver(plan=[500, 500]) as box:
        await _create(hooked, box, min_usd=100_000)
        first, second = venue_event(size_usd=200_000), venue_event(size_usd=300_000)
        await hooked.push(first)
        await until(lambda: len(box.answered(200)) == 1, what="the first event delivered")
        await hooked.push(second)
        await until(lambda: len(box.answered(200)) == 2, what="the second event delivered")

    assert all(d.verified for d in box.deliveries)
    # Two failures and a success for the first event, then the second at once: in seq order,
    # each delivered exactly once, every attempt with the same event id.
    assert [d.status for d in box.deliveries] == [500, 500, 200, 200]
    ids = [d.event_id for d in box.deliveries]
    assert ids[0] == ids[1] == ids[2] != ids[3]
    assert int(ids[2]) < int(ids[3])
    frames = [box.deliveries[2].frame, box.deliveries[3].frame]
    assert [f["type"] for f in frames] == ["liquidation", "liquidation"]
    assert [f["data"]["id"] for f in frames] == [first.id, second.id]  # type: ignore[index]
    assert str(frames[0]["data"]["seq"]) == ids[0]  # type: ignore[index]
    metrics = await _metrics(hooked)
    assert 'purpleflea_webhook_deliveries_total{outcome="delivered"} 2' in metrics
    assert 'purpleflea_webhook_deliveries_total{outcome="retried"} 2' in metrics


async def test_a_receiver_that_keeps_failing_gets_dead_letters_its_owner_replays(
    hooked: Running,
) -> None:
    async with receiver(then=500) as box:
        made = await _create(hooked, box)
        events = [venue_event(size_usd=10_000 * n) for n in (1, 2)]
        await hooked.push(*events)
        await until(lambda: len(box.deliveries) == 6, what="three attempts for each event")

        async def letters() -> Any:
            return (await _dead_letters(hooked, made["id"])).json()

        listing = await _letters_when(hooked, made["id"], 2)
        assert listing["total"] == 2, listing
        assert [x["frame"]["data"]["id"] for x in listing["dead_letters"]] == [e.id for e in events]
        assert all(x["attempts"] == 3 for x in listing["dead_letters"])
        assert all(x["error"] == "HTTP 500" for x in listing["dead_letters"])

        # Another account sees none of it and can touch none of it.
        other = hooked.server.keys.create("mallory", "m").key
        assert (await _dead_letters(hooked, made["id"], other)).status_code == 404
        async with _client(hooked, other) as http:
            assert (await http.get("/v1/webhooks")).json() == {"webhooks": []}
            replay = await http.post(f"/v1/webhooks/{made['id']}/dead-letters/replay")
            assert replay.status_code == 404
            assert (await http.delete(f"/v1/webhooks/{made['id']}")).status_code == 404

        # While the receiver is still down, a replay stops at the first failure.
        async with _client(hooked) as http:
            replay = await http.post(f"/v1/webhooks/{made['id']}/dead-letters/replay")
        assert replay.json()["delivered"] == 0
        assert replay.json()["failed"]["error"] == "HTTP 500"
        assert replay.json()["remaining"] == 2

        box.then = 200  # the receiver recovers
        async with _client(hooked) as http:
            replay = await http.post(f"/v1/webhooks/{made['id']}/dead-letters/replay")
        assert replay.json() == {
            "webhook_id": made["id"],
            "delivered": 2,
            "failed": None,
            "remaining": 0,
            "more": False,
        }
        delivered = box.answered(200)
        assert [d.frame["data"]["id"] for d in delivered] == [e.id for e in events]  # type: ignore[index]
        assert all(d.verified for d in box.deliveries)
        assert (await letters())["dead_letters"] == []
    metrics = await _metrics(hooked)
    assert 'purpleflea_webhook_deliveries_total{outcome="dead_lettered"} 2' in metrics


async def test_filters_are_the_streams(hooked: Running) -> None:
    async with receiver() as box, receiver() as cascades:
        await _create(hooked, box, markets=["eth-perp"], sides=["short"], min_usd=50_000)
        await _create(hooked, cascades, channels=["cascades"])
        wanted = venue_event(market="ETH-PERP", side="short", size_usd=60_000)
        await hooked.push(
            venue_event(market="BTC-PERP", side="short", size_usd=90_000),
            venue_event(market="ETH-PERP", side="long", size_usd=90_000),
            venue_event(market="ETH-PERP", side="short", size_usd=10_000),
            wanted,
        )
        await until(lambda: len(box.deliveries) >= 1, what="the wanted event")
        sentinel = venue_event(market="ETH-PERP", side="short", size_usd=70_000)
        await hooked.push(venue_event(market="SOL-PERP", side="short", size_usd=1e6), sentinel)
        await until(lambda: len(box.deliveries) >= 2, what="the sentinel")
    got = [d.frame["data"]["id"] for d in box.deliveries]  # type: ignore[index]
    assert got == [wanted.id, sentinel.id]
    assert all(d.frame["type"] == "cascade" for d in cascades.deliveries)


async def test_4xx_is_not_retried_but_429_is_after_retry_after(hooked: Running) -> None:
    async with receiver(plan=[400, (429, {"Retry-After": "0"}), 200]) as box:
        made = await _create(hooked, box)
        refused, later = venue_event(), venue_event()
        await hooked.push(refused, later)
        await until(lambda: len(box.answered(200)) == 1, what="the second event delivered")
        listing = await _letters_when(hooked, made["id"], 1)
    assert [d.status for d in box.deliveries] == [400, 429, 200]
    assert listing["dead_letters"][0]["attempts"] == 1  # the 400 was not tried again
    assert listing["dead_letters"][0]["error"] == "HTTP 400"
    assert listing["dead_letters"][0]["frame"]["data"]["id"] == refused.id
    assert box.answered(200)[0].frame["data"]["id"] == later.id  # type: ignore[index]


async def test_a_slow_receiver_holds_up_only_its_own_queue(tmp_path: Path) -> None:
    settings = WebhookSettings(attempts=1, queue=2, timeout_s=30.0)
    async with (
        running_server(_config(tmp_path, settings)) as running,
        receiver(hold=asyncio.Event()) as slow,
        receiver() as fast,
    ):
        slow_hook = await _create(running, slow)
        await _create(running, fast)
        events = [venue_event() for _ in range(6)]
        # One at a time (the queues hold two): the fast receiver gets each while the slow one
        # still sits on its first.
        for n, event in enumerate(events, 1):
            await running.push(event)
            await until(lambda n=n: len(fast.deliveries) == n, what=f"event {n} at the fast one")
        assert slow.waiting == 1
        assert slow.deliveries == []
        # The slow one's queue holds two (the one in flight and one more); the other four
        # overflowed into its dead letters, counted.
        listing = await _letters_when(running, slow_hook["id"], 4)
        assert listing["total"] == 4
        assert [x["frame"]["data"]["id"] for x in listing["dead_letters"]] == [
            e.id for e in events[2:]
        ]
        assert all(x["error"].startswith("queue full") for x in listing["dead_letters"])
        assert all(x["attempts"] == 0 for x in listing["dead_letters"])
        assert 'outcome="overflow"} 4' in await _metrics(running)
        assert slow.hold is not None
        slow.hold.set()
        await until(lambda: len(slow.deliveries) == 2, what="the slow receiver's two")
    assert [d.frame["data"]["id"] for d in slow.deliveries] == [e.id for e in events[:2]]  # type: ignore[index]


async def test_what_is_queued_at_shutdown_becomes_dead_letters(tmp_path: Path) -> None:
    config = _config(tmp_path, WebhookSettings(attempts=1, timeout_s=30.0))
    async with receiver(hold=asyncio.Event()) as slow:
        async with running_server(config) as running:
            made = await _create(running, slow)
            events = [venue_event() for _ in range(3)]
            await running.push(*events)
            await until(lambda: slow.waiting == 1, what="the first delivery in flight")
        store = open_webhook_store(str(config.db_path))
        letters = await store.dead_letters(made["id"])
        await store.close()
    assert [x.error for x in letters] == ["not delivered before the server stopped"] * 3
    assert [x.seq for x in letters] == sorted(x.seq for x in letters)


async def test_webhook_requests_are_validated(tmp_path: Path) -> None:
    settings = WebhookSettings(max_per_account=2)
    async with (
        running_server(_config(tmp_path, settings)) as running,
        _client(running) as http,
    ):
        for body, why in [
            ({"url": "ftp://example.com/x"}, "only http and https"),
            ({}, "url must be"),
            ({"url": "https://example.com", "since_seq": 5}, "since_seq"),
            ({"url": "https://example.com", "exchanges": ["nope"]}, "unknown exchange"),
            ({"url": "https://example.com", "channels": ["trades"]}, "unknown channel"),
            ({"url": "https://example.com", "min_usd": -1}, "min_usd"),
            ({"url": "https://example.com", "secret": "short"}, "secret must be"),
            ({"url": "https://example.com", "color": "red"}, "unknown field"),
        ]:
            response = await http.post("/v1/webhooks", json=body)
            assert response.status_code == 400, (body, response.text)
            assert why in response.json()["error"]["message"], (body, response.text)
        assert (await http.post("/v1/webhooks", content=b"[]")).status_code == 400
        mine = {"url": "https://example.com/a", "secret": "s" * 16}
        made = (await http.post("/v1/webhooks", json=mine)).json()
        assert made["secret"] == "s" * 16
        assert made["filters"]["channels"] == ["liquidations"]
        assert (await http.post("/v1/webhooks", json=mine)).status_code == 201
        capped = await http.post("/v1/webhooks", json=mine)
        assert capped.status_code == 409
        assert capped.json()["error"]["code"] == "too_many_webhooks"
        listed = (await http.get("/v1/webhooks")).json()["webhooks"]
        assert len(listed) == 2
        assert all("secret" not in w for w in listed)  # shown once, at creation
        gone = await http.delete(f"/v1/webhooks/{made['id']}")
        assert gone.json() == {"deleted": made["id"]}
        assert (await http.delete(f"/v1/webhooks/{made['id']}")).status_code == 404
        assert running.server.webhooks is not None
        dispatcher = running.server.webhooks.dispatcher
        assert dispatcher is not None
        assert made["id"] not in dispatcher.webhook_ids
        assert len(dispatcher.webhook_ids) == 1


async def test_private_targets_are_refused_when_the_operator_says_so(tmp_path: Path) -> None:
    config = _config(tmp_path, WebhookSettings(allow_private=False))
    async with running_server(config) as running, _client(running) as http:
        for url in ("http://127.0.0.1:9/x", "http://localhost/x", "http://169.254.169.254/"):
            response = await http.post("/v1/webhooks", json={"url": url})
            assert response.status_code == 400, url
            assert "refused" in response.json()["error"]["message"]


@pytest.mark.parametrize("url", ["http://xn--/x", "http://a..b/x"])
async def test_a_stored_url_the_client_cannot_use_is_a_refused_attempt(url: str) -> None:
    # Created before such URLs were refused: the attempt raised (IDNAError, UnicodeError),
    # which ended the webhook's delivery task; nothing was delivered or dead-lettered again.
    sender = Sender(WebhookSettings(), allow_private=False)
    webhook = Webhook(id="wh_x", account="a", url=url, secret="s" * 16, filters={}, created_at=0)
    try:
        outcome = await sender.send(webhook, 1, b"{}")
    finally:
        await sender.close()
    assert outcome.refused
    assert outcome.error.startswith("invalid url: ")


async def test_a_name_that_resolves_to_a_private_address_is_refused_when_sending() -> None:
    # A host name passes creation (its addresses can change); each attempt resolves it first.
    sender = Sender(WebhookSettings(), allow_private=False)
    webhook = Webhook(
        id="wh_x",
        account="a",
        url="http://localhost:9/x",
        secret="s" * 16,
        filters={},
        created_at=0,
    )
    outcome = await sender.send(webhook, 1, b"{}")
    await sender.close()
    assert outcome.refused
    assert "non-public" in outcome.error


async def test_the_connection_goes_to_the_address_that_was_checked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # DNS rebinding: the name answers a public address to the first lookup and 127.0.0.1 to
    # every later one. The delivery must not reach the loopback receiver.
    connections: list[object] = []

    async def count(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(writer)
        writer.write(b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n")
        await writer.drain()
        writer.close()

    local = await asyncio.start_server(count, "127.0.0.1", 0)
    port = local.sockets[0].getsockname()[1]
    real = socket.getaddrinfo
    answers = iter(["1.1.1.1"])

    def rebinding(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host not in ("rebind.example", b"rebind.example"):  # anyio passes bytes
            return real(host, *args, **kwargs)
        address = next(answers, "127.0.0.1")
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))]

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    # No delivery budget: its own lookup of a new name would take the first answer.
    unbudgeted = WebhookSettings(timeout_s=1.0, destination_rate=0, destination_bytes_per_s=0)
    sender = Sender(unbudgeted, allow_private=False)
    webhook = Webhook(
        id="wh_x",
        account="a",
        url=f"http://rebind.example:{port}/x",
        secret="s" * 16,
        filters={},
        created_at=0,
    )
    try:
        outcome = await sender.send(webhook, 1, b"{}")
        again = await sender.send(webhook, 2, b"{}")  # its lookup answers 127.0.0.1: refused
    finally:
        await sender.close()
        local.close()
    assert connections == []
    assert outcome.status is None  # 1.1.1.1 is not reachable here
    assert not outcome.refused
    assert again.refused
    assert "127.0.0.1" in again.error


async def test_a_receiver_that_trickles_its_answer_times_out(tmp_path: Path) -> None:
    # One header byte every 50 ms never trips a per-read timeout; the attempt's deadline must.
    async def trickle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        with contextlib.suppress(ConnectionError):
            writer.write(b"HTTP/1.1 200 OK\r\n")
            for _ in range(400):
                writer.write(b"X")
                await writer.drain()
                await asyncio.sleep(0.05)
        writer.close()

    server = await asyncio.start_server(trickle, "127.0.0.1", 0)
    url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/hook"
    settings = WebhookSettings(attempts=1, timeout_s=0.5)
    try:
        async with running_server(_config(tmp_path, settings)) as running:
            async with _client(running) as http:
                made = (await http.post("/v1/webhooks", json={"url": url})).json()
            await running.push(venue_event())
            listing = await _letters_when(running, made["id"], 1)
    finally:
        server.close()
    assert listing["total"] == 1
    assert listing["dead_letters"][0]["error"].startswith("timeout")


async def test_the_dispatcher_reads_the_bus_only_while_there_are_webhooks(hooked: Running) -> None:
    bus = hooked.server.bus
    # The stream fan-out's one subscription is always there; the dispatcher's comes and goes.
    streams = 1
    await until(lambda: bus.subscribers == streams, what="only the streams' subscriber")  # type: ignore[attr-defined]
    async with receiver() as box:
        made = await _create(hooked, box)
        assert bus.subscribers == streams + 1  # type: ignore[attr-defined]
        event = venue_event()
        await hooked.push(event)  # published right after the webhook was made: it gets it
        await until(lambda: len(box.deliveries) == 1, what="the delivery")
        async with _client(hooked) as http:
            await http.delete(f"/v1/webhooks/{made['id']}")
        assert bus.subscribers == streams  # type: ignore[attr-defined]
    assert box.deliveries[0].frame["data"]["id"] == event.id  # type: ignore[index]


async def test_a_webhook_made_on_another_node_gets_what_was_published_meanwhile(
    tmp_path: Path,
) -> None:
    # No periodic reload: the dispatcher learns of the webhook only when told, after events
    # were published (as when an API node made it and the ingest node reloads seconds later).
    config = _config(tmp_path, WebhookSettings(reload_s=3_600))
    async with running_server(config) as running, receiver() as box:
        service = running.server.webhooks
        assert service is not None
        assert service.dispatcher is not None
        webhook = Webhook(
            id="wh_elsewhere",
            account="tester",
            url=box.url,
            secret="s" * 16,
            filters={"channels": ["liquidations"], "min_usd": 100_000},
            created_at=0,
            settled_seq=running.server.tracker.last_seq,
        )
        box.secret = webhook.secret
        assert await service.store.create(webhook, cap=10)
        before = [venue_event(size_usd=200_000), venue_event(size_usd=1), venue_event()]
        await running.push(*before)
        assert box.deliveries == []
        await service.dispatcher.reload()
        after = venue_event(size_usd=300_000)
        await running.push(after)
        await until(lambda: len(box.deliveries) == 3, what="three deliveries")
        assert service.dispatcher.counters["caught_up"] == 2
    got = [d.frame["data"]["id"] for d in box.deliveries]  # type: ignore[index]
    assert got == [before[0].id, before[2].id, after.id]  # in seq order, filtered, once each


async def test_after_a_crash_the_next_start_sends_what_was_queued(tmp_path: Path) -> None:
    config = _config(tmp_path, WebhookSettings(attempts=1, timeout_s=30.0, reload_s=0.05))
    async with receiver(hold=asyncio.Event()) as box:
        async with running_server(config) as running:
            made = await _create(running, box)
            events = [venue_event() for _ in range(3)]
            await running.push(*events)
            await until(lambda: box.waiting == 1, what="the first delivery in flight")
            service = running.server.webhooks
            assert service is not None
            assert service.dispatcher is not None
            first = (await running.server.store.since(0))[0].seq
            stored: list[Webhook] = []

            async def settled_saved() -> bool:
                stored[:] = await service.store.webhooks()
                return stored[0].settled_seq == first - 1

            for _ in range(300):
                if await settled_saved():
                    break
                await asyncio.sleep(0.05)
            assert stored[0].settled_seq == first - 1  # the first one is still in flight
            # A crash: the process dies with its queue; nothing is written on the way out.
            service.dispatcher.close = service.sender.close  # type: ignore[method-assign]
        store = open_webhook_store(str(config.db_path))
        assert await store.dead_letters(made["id"]) == []
        await store.close()
        assert box.hold is not None
        box.hold.set()  # the receiver answers again (the lost attempt's answer goes nowhere)
        await until(lambda: len(box.deliveries) == 1, what="the lost attempt to finish")
        async with running_server(config):
            await until(lambda: len(box.deliveries) == 4, what="the three sent again")
    assert [d.frame["data"]["id"] for d in box.deliveries[1:]] == [e.id for e in events]  # type: ignore[index]


async def test_a_replay_answers_within_its_budget_and_one_runs_at_a_time(
    hooked: Running, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A receiver answering slowly (but answering) kept a replay of 1,000 letters open for up
    # to 80 minutes, past the SDK's 10 s timeout; its user then replayed again while the
    # first was still sending the same letters.
    monkeypatch.setattr(webhook_sender, "REPLAY_BUDGET_S", 0.0)  # one letter per request
    async with receiver(then=500) as box:
        made = await _create(hooked, box)
        await hooked.push(*(venue_event(size_usd=10_000 * n) for n in (1, 2, 3)))
        await _letters_when(hooked, made["id"], 3)
        box.then, box.hold = 200, asyncio.Event()
        path = f"/v1/webhooks/{made['id']}/dead-letters/replay"
        async with _client(hooked) as http:
            first = asyncio.create_task(http.post(path))
            await until(lambda: box.waiting == 1, what="the replay's first letter at the receiver")
            second = await http.post(path)
            assert second.status_code == 409, second.text
            assert second.json()["error"]["code"] == "replay_in_progress"
            box.hold.set()
            answer = (await first).json()
        assert answer["delivered"] == 1  # the budget ran out with that one letter
        assert (answer["remaining"], answer["more"]) == (2, True)
        # The SDK asks again until it is done (here one letter a request).
        async with LiquidationClient(api_key=hooked.key, base_url=hooked.url) as client:
            done = await client.replay_dead_letters(made["id"])
        assert (done["delivered"], done["remaining"], done["more"]) == (2, 0, False)


async def test_a_catch_up_beyond_the_queue_fills_the_dead_letters_then_stops(
    tmp_path: Path,
) -> None:
    settings = WebhookSettings(reload_s=3_600, queue=2, dead_letters=2)
    async with running_server(_config(tmp_path, settings)) as running, receiver() as box:
        service = running.server.webhooks
        assert service is not None
        assert service.dispatcher is not None
        webhook = Webhook(
            id="wh_behind",
            account="tester",
            url=box.url,
            secret="s" * 16,
            filters={"channels": ["liquidations"]},
            created_at=0,
            settled_seq=running.server.tracker.last_seq,
        )
        box.secret = webhook.secret
        assert await service.store.create(webhook, cap=10)
        events = [venue_event() for _ in range(6)]
        await running.push(*events)
        await service.dispatcher.reload()
        await until(lambda: len(box.deliveries) == 2, what="the queue's two")
        listing = await _letters_when(running, webhook.id, 2)
        counters = service.dispatcher.counters
        assert counters["catch_up_truncated"] == 1
        assert counters["overflow"] == 2
    assert [d.frame["data"]["id"] for d in box.deliveries] == [e.id for e in events[:2]]  # type: ignore[index]
    assert [x["frame"]["data"]["id"] for x in listing["dead_letters"]] == [
        e.id for e in events[2:4]
    ]


async def test_a_store_outage_of_the_webhook_list_logs_two_lines_and_shows_in_health(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The list is reloaded every ``reload_s`` (2 s by default); with the database away each
    failed reload logged a full traceback (35 lines every 2 s on an ingest node whose
    PostgreSQL was cut). Now: one line when it starts failing, one when it works again, and
    /v1/health names it meanwhile."""
    config = _config(tmp_path, WebhookSettings(reload_s=0.02))
    async with running_server(config) as running:
        service = running.server.webhooks
        assert service is not None
        assert service.dispatcher is not None
        listed = service.store.webhooks

        async def away() -> list[Webhook]:
            raise ConnectionError("webhook store 'postgresql://db/pf': cannot connect: refused")

        caplog.set_level(logging.INFO)
        monkeypatch.setattr(service.store, "webhooks", away)
        await until(
            lambda: (
                service.dispatcher is not None
                and service.dispatcher.counters["reload_failures"] >= 10
            ),
            what="ten failed reloads",
        )
        async with httpx.AsyncClient(base_url=running.url) as http:
            health = (await http.get("/v1/health")).json()
        assert health["status"] == "degraded"
        assert any("webhook list" in r and "refused" in r for r in health["reasons"])
        monkeypatch.setattr(service.store, "webhooks", listed)
        await until(lambda: not running.server.tracker.writes.failing, what="the reload back")
    lines = [r for r in caplog.records if "webhook list" in r.getMessage()]
    assert len(lines) == 2, [r.getMessage() for r in lines]
    assert all(r.exc_info is None for r in lines)  # a line each, no traceback
    assert "recovered" in lines[1].getMessage()


def _undocumented(value: Any, schema: Any, spec: dict[str, Any], where: str = "$") -> list[str]:
    """The fields of an answer its OpenAPI schema does not name (clients generate code from
    the schema: a field it leaves out is one they cannot read)."""
    while isinstance(schema, dict) and "$ref" in schema:
        schema = spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    if isinstance(value, dict):
        properties = schema.get("properties", {})
        found = [f"{where}.{k}" for k in value if k not in properties]
        for name, item in value.items():
            if name in properties and name != "frame":  # a stream frame, documented there
                found += _undocumented(item, properties[name], spec, f"{where}.{name}")
        return found
    if isinstance(value, list) and value:
        return _undocumented(value[0], schema.get("items", {}), spec, f"{where}[0]")
    return []


async def test_every_webhook_answer_is_the_one_the_openapi_document_describes(
    hooked: Running,
) -> None:
    import jsonschema

    async with httpx.AsyncClient(base_url=hooked.url) as http:
        spec = (await http.get("/openapi.json")).json()

    def check(response: httpx.Response, path: str, method: str) -> None:
        schema = spec["paths"][path][method]["responses"][str(response.status_code)]
        schema = schema["content"]["application/json"]["schema"]
        assert _undocumented(response.json(), schema, spec) == [], (path, response.json())
        jsonschema.validate(response.json(), {**schema, "components": spec["components"]})

    async with receiver(then=500) as box:
        made = await _create(hooked, box, min_usd=1_000, channels=["liquidations", "cascades"])
        await hooked.push(venue_event(size_usd=10_000))
        await until(lambda: len(box.deliveries) == 3, what="three attempts")
        await _letters_when(hooked, made["id"], 1)
        one = "/v1/webhooks/{webhook_id}"
        async with _client(hooked) as http:
            created = await http.post("/v1/webhooks", json={"url": box.url})
            check(created, "/v1/webhooks", "post")
            check(await http.get("/v1/webhooks"), "/v1/webhooks", "get")
            letters = await http.get(f"/v1/webhooks/{made['id']}/dead-letters")
            check(letters, f"{one}/dead-letters", "get")
            replay = await http.post(f"/v1/webhooks/{made['id']}/dead-letters/replay")
            assert replay.json()["failed"] is not None  # the receiver still fails
            check(replay, f"{one}/dead-letters/replay", "post")
            box.then = 200
            replay = await http.post(f"/v1/webhooks/{made['id']}/dead-letters/replay")
            assert replay.json()["failed"] is None
            check(replay, f"{one}/dead-letters/replay", "post")
            check(await http.delete(f"/v1/webhooks/{made['id']}"), one, "delete")


async def test_a_replay_that_ran_answers_its_result_when_the_lease_is_not_given_back(
    hooked: Running, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The lease's release suppressed only StoreUnavailable: SQLite's "database is locked"
    there turned a replay that had run (its letters sent and removed) into a 500."""
    service = hooked.server.webhooks
    assert service is not None
    async with receiver(then=500) as box:
        made = await _create(hooked, box)
        await hooked.push(venue_event(size_usd=10_000))
        await _letters_when(hooked, made["id"], 1)
        box.then = 200

        async def locked(webhook_id: str, holder: str) -> None:
            raise sqlite3.OperationalError("database is locked")

        monkeypatch.setattr(service.store, "release_replay", locked)
        caplog.set_level(logging.INFO)
        async with _client(hooked) as http:
            replay = await http.post(f"/v1/webhooks/{made['id']}/dead-letters/replay")
    assert replay.status_code == 200, replay.text
    assert (replay.json()["delivered"], replay.json()["remaining"]) == (1, 0)
    lines = [r for r in caplog.records if "lease" in r.getMessage()]
    assert len(lines) == 1, [r.getMessage() for r in lines]
    assert made["id"] in lines[0].getMessage()
    assert "database is locked" in lines[0].getMessage()
    assert lines[0].exc_info is None  # a line, no traceback
    metrics = await _metrics(hooked)
    assert "purpleflea_webhook_replay_lease_release_failures_total 1" in metrics


async def test_deliveries_reuse_one_connection_and_a_long_answer_is_not_downloaded() -> None:
    """A short answer is read to its end so that its connection carries the next delivery:
    unread, every delivery opened a new connection (five here, for five deliveries). A long
    answer is cut after ANSWER_BYTES and its connection closed."""
    connections: list[int] = []
    sent: list[int] = []

    async def keep_alive(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(1)
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(
                    int(line.split(b":")[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length")
                )
                body = await reader.readexactly(length)
                answer = b"x" * (50_000_000 if body == b'"long"' else 2)
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(answer))
                for start in range(0, len(answer), 65_536):
                    writer.write(answer[start : start + 65_536])
                    await writer.drain()
                    sent.append(start)
        writer.close()

    server = await asyncio.start_server(keep_alive, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    sender = Sender(WebhookSettings(timeout_s=5.0), allow_private=True)
    webhook = Webhook(
        id="wh_x",
        account="a",
        url=f"http://127.0.0.1:{port}/x",
        secret="s" * 16,
        filters={},
        created_at=0,
    )
    try:
        outcomes = [await sender.send(webhook, n, b"{}") for n in range(5)]
        assert [o.status for o in outcomes] == [200] * 5
        assert len(connections) == 1
        sent.clear()
        long = await sender.send(webhook, 6, b'"long"')
        assert long.status == 200  # delivered: the answer's body is no concern of ours
        again = await sender.send(webhook, 7, b"{}")
        assert again.status == 200
        assert len(connections) == 2  # the long answer's connection was not reused
        assert len(sent) < 100  # of its 763 chunks: the rest was never read
    finally:
        await sender.close()
        server.close()


async def test_an_attempt_that_raises_is_dead_lettered_and_the_webhook_goes_on(
    hooked: Running, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # Whatever a sender raises (a URL the client cannot use did) ended the webhook's task:
    # nothing was delivered or dead-lettered after it, without a word.
    real = Sender.send
    calls = 0

    async def first_raises(self: Sender, *args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("boom")
        return await real(self, *args, **kwargs)

    monkeypatch.setattr(Sender, "send", first_raises)
    caplog.set_level(logging.ERROR, logger="purpleflea.webhooks")
    async with receiver() as box:
        made = await _create(hooked, box)
        first, second = venue_event(size_usd=10_000), venue_event(size_usd=20_000)
        await hooked.push(first, second)
        await until(lambda: len(box.answered(200)) == 1, what="the second event delivered")
        listing = await _letters_when(hooked, made["id"], 1)
    assert [x["frame"]["data"]["id"] for x in listing["dead_letters"]] == [first.id]
    assert listing["dead_letters"][0]["error"] == "internal error: RuntimeError: boom"
    assert box.deliveries[0].frame["data"]["id"] == second.id  # type: ignore[index]
    assert 'purpleflea_webhook_deliveries_total{outcome="send_errors"} 1' in await _metrics(hooked)


async def test_a_burst_of_a_crash_does_not_cut_the_dispatchers_bus_subscription(
    hooked: Running,
) -> None:
    # Its buffer, meant as 100,000 items, was given to the bus as bytes: 100 KB, 317 frames.
    # A served simulated crash cut it twice in 20 minutes ("webhook dispatcher lost its bus
    # subscription: slow consumer"), and what was published in the gap was never sent.
    assert hooked.server.webhooks is not None
    dispatcher = hooked.server.webhooks.dispatcher
    assert dispatcher is not None
    async with receiver() as box:
        await _create(hooked, box, markets=["ETH-PERP"])
        burst = [venue_event(market="BTC-PERP", size_usd=50_000.0) for _ in range(2_000)]
        await hooked.push(*burst, venue_event(market="ETH-PERP", size_usd=60_000.0))
        await until(lambda: len(box.deliveries) == 1, what="the delivery after the burst")
    assert dispatcher.counters["bus_dropped"] == 0


def _crash(start_ms: int) -> list[VenueLiquidation]:
    """ETH-PERP longs liquidated faster and larger as its price falls (the engine raises a
    cascade: started, then updated), each after a BTC-PERP event no webhook below wants."""
    burst: list[VenueLiquidation] = []
    for i in range(400):
        ts = start_ms + 150 * i
        burst.append(venue_event(market="BTC-PERP", size_usd=20_000.0, ts=ts))
        price = 3_000.0 - 1.5 * i
        size = 40_000.0 * (1 + i // 8)
        burst.append(venue_event(market="ETH-PERP", price=price, size_usd=size, ts=ts + 1))
    return burst


async def test_a_cut_bus_subscription_loses_no_item_and_repeats_none(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # 2 KiB of frames, ~6: each batch of the crash below cuts the dispatcher's subscription.
    # It used to subscribe again at the bus's head, and what was published in the gap (logged
    # as "lost its bus subscription: slow consumer") was never sent to any webhook.
    async with running_server(_config(tmp_path, GAPPY)) as running:
        await check_every_item_once_through_cuts(running, caplog)


#: A bus buffer of ~6 frames, and no destination budget (this is not about it).
GAPPY = replace(FAST, bus_buffer_bytes=2_048, destination_rate=0.0)


async def check_every_item_once_through_cuts(
    running: Running, caplog: pytest.LogCaptureFixture, *, cut_every_s: float | None = None
) -> None:
    """A crash pushed in batches cuts the dispatcher's subscription (``GAPPY``; or the bus
    cuts it every ``cut_every_s`` while the crash is published); a webhook gets every item it
    wants, events and cascade alerts, once each and in seq order."""
    assert running.server.webhooks is not None
    dispatcher = running.server.webhooks.dispatcher
    assert dispatcher is not None
    caplog.set_level(logging.WARNING, logger="purpleflea.webhooks")
    async with receiver() as box:
        await _create(running, box, markets=["ETH-PERP"], channels=["liquidations", "cascades"])
        crash = _crash(T0)

        async def publish() -> None:
            for start in range(0, len(crash), 200):
                await running.push(*crash[start : start + 200])

        pushing = asyncio.create_task(publish())
        while cut_every_s is not None and not pushing.done():
            # What the bus does to a slow consumer (BoundedQueue.overflow), at times the
            # bus's own pace would not choose.
            subscription = dispatcher._subscription  # the one it reads
            if subscription is not None:
                subscription.close("slow consumer: cut by the test")
            await asyncio.wait({pushing}, timeout=cut_every_s)
        await pushing
        # Pushed last and alone (it fits the buffer): delivered live, after every earlier
        # item queued, repeats included (one webhook's deliveries go in seq order).
        marker = venue_event(market="ETH-PERP", size_usd=30_000.0, ts=T0 + 200_000)
        await running.push(marker)

        def marker_seq() -> int | None:
            for delivery in box.deliveries:
                if delivery.frame["data"]["id"] == marker.id:  # type: ignore[index]
                    return int(delivery.event_id)
            return None

        # Some 400 deliveries to one webhook, one at a time: 20 s was not enough at load 10-13
        # (CI, 2026-12-08); a stall still fails, 20 s after the last delivery.
        await until(
            lambda: marker_seq() is not None,
            what="the event pushed after the crash",
            progress=lambda: len(box.deliveries),
        )
        upto = marker_seq()
        assert upto is not None
        store = running.server.store
        items: list[Liquidation | CascadeAlert] = [*await store.since(0, 10_000)]
        items += await store.cascades_since(0, 10_000)
        metrics = await _metrics(running)
    assert any(isinstance(item, CascadeAlert) for item in items), "no alert: not covered"
    wanted = sorted(i.seq for i in items if i.market == "ETH-PERP" and i.seq <= upto)
    assert dispatcher.counters["bus_dropped"] >= 1, "the subscription was never cut"
    delivered = [int(d.event_id) for d in box.deliveries]
    assert all(d.verified and d.status == 200 for d in box.deliveries)
    assert delivered[: delivered.index(upto) + 1] == wanted
    assert len(delivered) == len(set(delivered))  # none again, even after the marker
    backfilled = dispatcher.counters["bus_backfilled"]
    # Each batch overflowed the buffer; a cut at the test's times may find nothing waiting.
    assert backfilled > 0 or cut_every_s is not None
    assert f'purpleflea_webhook_deliveries_total{{outcome="bus_backfilled"}} {backfilled}' in (
        metrics
    )
    lines = [r.getMessage() for r in caplog.records]
    gaps = [line for line in lines if "read back from the history" in line]
    assert len(gaps) == dispatcher.counters["bus_dropped"], gaps  # one line per gap
    assert sum(int(line.split(": ")[-1].split(" ")[0]) for line in gaps) == backfilled, gaps


class _FailsOnce:
    """The history store, whose first read of events fails (a store away for a moment)."""

    def __init__(self, store: Any) -> None:
        self.store = store
        self.failed = False

    async def since(self, seq: int, limit: int = 1000) -> list[Liquidation]:
        if not self.failed:
            self.failed = True
            raise OSError("database is away")
        events: list[Liquidation] = await self.store.since(seq, limit)
        return events

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)


async def test_a_gap_whose_read_fails_is_read_again(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # Raised, the store's error would have ended the dispatcher: no webhook delivered again.
    async with running_server(_config(tmp_path, GAPPY)) as running:
        assert running.server.webhooks is not None
        dispatcher = running.server.webhooks.dispatcher
        assert dispatcher is not None
        history = _FailsOnce(running.server.store)
        dispatcher.history = history  # type: ignore[assignment]
        await check_every_item_once_through_cuts(running, caplog)
    assert history.failed
    assert dispatcher.counters["bus_backfill_failures"] == 1
    assert any("database is away" in r.getMessage() for r in caplog.records)
