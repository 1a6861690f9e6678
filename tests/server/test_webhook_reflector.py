"""Webhooks must not make the server a reflector: many free accounts aiming their webhooks at
one third party's server must not multiply what that server receives (docs/security.md).

A real server, accounts made through its key store, and local receivers
(tests/server/webhook_receiver.py) that count what reaches them per event."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path
from typing import Any

import httpx
import pytest

from purpleflea.server.config import ServerConfig
from purpleflea.server.webhook_budget import BudgetLimits, DestinationBudget
from purpleflea.server.webhook_policy import WebhookSettings
from purpleflea.server.webhook_sender import Sender
from purpleflea.store.webhooks import Webhook
from tests.server.conftest import Running, make_config, running_server, venue_event
from tests.server.webhook_receiver import receiver, until


def _config(tmp_path: Path, settings: WebhookSettings) -> ServerConfig:
    return make_config(tmp_path, webhooks=settings, rate_per_s=1_000.0, rate_burst=1_000.0)


def _keys(running: Running, accounts: int) -> list[str]:
    """API keys of ``accounts`` accounts (registration is free: an attacker has many)."""
    return [running.server.keys.create(f"acct{n}", "k").key for n in range(accounts)]


async def _aim(running: Running, key: str, url: str, count: int) -> list[httpx.Response]:
    """One account's attempts to make ``count`` webhooks at ``url``."""
    async with httpx.AsyncClient(
        base_url=running.url, headers={"Authorization": f"Bearer {key}"}
    ) as http:
        return [
            await http.post("/v1/webhooks", json={"url": url, "secret": "s" * 16})
            for _ in range(count)
        ]


async def _metrics(running: Running) -> str:
    async with httpx.AsyncClient(base_url=running.url) as http:
        return (await http.get("/v1/metrics")).text


async def test_many_accounts_aiming_at_one_host_get_the_host_cap_not_a_multiple(
    tmp_path: Path,
) -> None:
    """Six accounts with ten webhooks each at one target made the server POST each event 60
    times to it; the per-host cap (20 by default) refuses the 21st webhook, whoever asks."""
    async with (
        running_server(_config(tmp_path, WebhookSettings())) as running,
        receiver(secret="s" * 16) as victim,
    ):
        answers: list[httpx.Response] = []
        for key in _keys(running, 6):
            answers += await _aim(running, key, victim.url, 10)
        made = [a for a in answers if a.status_code == 201]
        refused = [a for a in answers if a.status_code == 409]
        assert (len(made), len(refused)) == (20, 40)
        error = refused[0].json()["error"]
        assert error["code"] == "too_many_webhooks_for_host"
        assert "20 webhooks" in error["message"]
        assert "'127.0.0.1'" in error["message"]
        assert "--webhooks-per-host" in error["message"]
        # Another spelling of the same address is the same host.
        decimal = victim.url.replace("127.0.0.1", "2130706433")
        assert (await _aim(running, _keys(running, 7)[-1], decimal, 1))[0].status_code == 409

        await running.push(venue_event())
        await until(lambda: len(victim.deliveries) >= 20, what="the event at every webhook")
        await asyncio.sleep(0.3)  # any more would have come by now
        assert len(victim.deliveries) == 20  # one per webhook made: 20 per event, not 60
        assert 'purpleflea_webhook_create_refused_total{limit="host"} 41' in (
            await _metrics(running)
        )


async def test_legitimate_use_is_untouched(tmp_path: Path) -> None:
    """One account's ten webhooks at its own receiver, other accounts at theirs (other
    hosts): every one is made and every event reaches each, at once."""
    async with (
        running_server(_config(tmp_path, WebhookSettings())) as running,
        receiver(secret="s" * 16) as own,
        receiver(secret="s" * 16, host="127.0.0.2") as second,
        receiver(secret="s" * 16, host="127.0.0.3") as third,
    ):
        keys = _keys(running, 3)
        answers = await _aim(running, keys[0], own.url, 10)
        answers += await _aim(running, keys[1], second.url, 10)
        answers += await _aim(running, keys[2], third.url, 5)
        assert [a.status_code for a in answers] == [201] * 25
        await running.push(venue_event(), venue_event())
        for box, count in ((own, 20), (second, 20), (third, 10)):
            await until(lambda b=box, c=count: len(b.deliveries) == c, what=f"{count} at {box}")
        assert all(d.verified for d in [*own.deliveries, *second.deliveries])
        metrics = await _metrics(running)
        assert "purpleflea_webhook_budget_waits_total 0" in metrics
        assert 'purpleflea_webhook_deliveries_total{outcome="delivered"} 50' in metrics


@pytest.fixture
def victim_names(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every name under ``victim.test`` resolves to 127.0.0.1: an attacker's wildcard DNS
    record pointing all its names at one victim's address."""
    real = socket.getaddrinfo

    def resolve(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        name = host.decode() if isinstance(host, bytes) else host
        if isinstance(name, str) and name.endswith(".victim.test"):
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", int(port or 0)))]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", resolve)


async def test_names_sharing_an_address_share_its_delivery_budget(
    tmp_path: Path, victim_names: None
) -> None:
    """Thirty webhooks at thirty names (so thirty hosts: the creation cap does not see them
    together) that all resolve to one address. Each event went out 30 times at once; now the
    address gets at most its budget: 5 at once, then 20 a second, all webhooks together."""
    rate, burst = 20.0, 5
    settings = WebhookSettings(destination_rate=rate, destination_burst=burst)
    async with (
        running_server(_config(tmp_path, settings)) as running,
        receiver(secret="s" * 16) as victim,
    ):
        port = victim.url.split(":")[2].split("/")[0]
        for n, key in enumerate(_keys(running, 3)):
            for m in range(10):
                url = f"http://h{n}-{m}.victim.test:{port}/hook"
                assert (await _aim(running, key, url, 1))[0].status_code == 201
        start = asyncio.get_running_loop().time()
        await running.push(venue_event(), venue_event())  # 60 deliveries to one address
        await until(lambda: len(victim.deliveries) == 60, what="all 60, at the budget's pace")
        # Delivery number i (from 1) may arrive no earlier than (i - burst) / rate after the
        # events: a loaded machine only makes them later. Without the budget all 60 came
        # within a fraction of a second.
        late = [
            (i, round(t - start, 3))
            for i, t in enumerate(victim.arrived, 1)
            if t - start < (i - burst) / rate - 0.05
        ]
        assert late == []
        assert all(d.verified for d in victim.deliveries)
        metrics = await _metrics(running)
        waits = next(
            line
            for line in metrics.splitlines()
            if line.startswith("purpleflea_webhook_budget_waits_total")
        )
        assert float(waits.split()[-1]) >= 60 - burst - 1
        assert 'outcome="delivered"} 60' in metrics


async def test_a_replay_does_not_wait_for_a_spent_destination(
    tmp_path: Path, victim_names: None
) -> None:
    """A replay answers a request: at a destination whose budget is spent it stops at once,
    saying why, instead of holding the request open for the budget's wait."""
    settings = WebhookSettings(
        attempts=1, destination_rate=0.1, destination_burst=1, backoff_s=0.01
    )
    async with running_server(_config(tmp_path, settings)) as running:
        async with receiver(then=500) as box:
            key = _keys(running, 1)[0]
            port = box.url.split(":")[2].split("/")[0]
            made = (await _aim(running, key, f"http://a.victim.test:{port}/hook", 1))[0].json()
            box.secret = made["secret"]
            await running.push(venue_event())
            await until(lambda: len(box.deliveries) == 1, what="the failed delivery")
        async with httpx.AsyncClient(
            base_url=running.url, headers={"Authorization": f"Bearer {key}"}
        ) as http:
            for _ in range(100):
                letters = (await http.get(f"/v1/webhooks/{made['id']}/dead-letters")).json()
                if letters["total"]:
                    break
                await asyncio.sleep(0.05)
            replay = await http.post(f"/v1/webhooks/{made['id']}/dead-letters/replay")
        metrics = await _metrics(running)
    answer = replay.json()
    assert answer["delivered"] == 0
    assert "over its delivery budget" in answer["failed"]["error"]
    assert "127.0.0.1" in answer["failed"]["error"]  # the address the name reached
    assert "purpleflea_webhook_budget_refused_total 1" in metrics


async def test_the_budget_is_per_address_not_per_receiver(tmp_path: Path) -> None:
    """Two receivers on two addresses each get their own budget: one address at its
    budget does not slow another."""
    settings = WebhookSettings(destination_rate=1.0, destination_burst=2)
    async with (
        running_server(_config(tmp_path, settings)) as running,
        receiver(secret="s" * 16) as one,
        receiver(secret="s" * 16, host="127.0.0.2") as other,
    ):
        key = _keys(running, 1)[0]
        await _aim(running, key, one.url, 4)
        await _aim(running, key, other.url, 1)
        await running.push(venue_event())
        await until(lambda: len(other.deliveries) == 1, what="the other address's delivery")
        await until(lambda: len(one.deliveries) >= 2, what="the first address's burst")
        # The first address waits for its budget (two more, a second each): not the other.
        assert len(one.deliveries) < 4
        await until(lambda: len(one.deliveries) == 4, what="the rest at 1/s")


async def test_a_name_is_charged_to_the_address_its_connection_reached(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A name that answers one address to the budget's lookup and another to the
    connection's (DNS rebinding, to send past the budget) is charged where the connection
    went: every webhook aimed there waits for it."""
    real = socket.getaddrinfo
    first = iter(["127.0.0.9"])  # the budget's lookup; the connection's gets 127.0.0.1

    def rebinding(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host not in ("flip.victim.test", b"flip.victim.test"):
            return real(host, port, *args, **kwargs)
        address = next(first, "127.0.0.1")
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, int(port or 0)))]

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    now = [0.0]
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(round(seconds, 6))
        now[0] += seconds

    limits = BudgetLimits(rate=1.0, burst=1, bytes_per_s=0.0)
    budget = DestinationBudget(limits, clock=lambda: now[0])
    sender = Sender(WebhookSettings(), allow_private=True, budget=budget, sleep=sleep)
    async with receiver(secret="s" * 16) as box:
        port = box.url.split(":")[2].split("/")[0]

        def hook(webhook_id: str, url: str) -> Webhook:
            return Webhook(
                id=webhook_id, account="a", url=url, secret="s" * 16, filters={}, created_at=0
            )

        by_name = hook("wh_a", f"http://flip.victim.test:{port}/hook")
        by_address = hook("wh_b", box.url)
        try:
            assert sender.destination(by_name) == "name:flip.victim.test"
            assert (await sender.send(by_name, 1, b"{}")).status == 200
            assert slept == []  # its turn at 127.0.0.9, where it was looked up
            assert sender.destination(by_name) == "127.0.0.1"  # where it went
            assert (await sender.send(by_address, 2, b"{}")).status == 200
            assert slept == [1.0]  # 127.0.0.1 was charged for the name's delivery
            assert (await sender.send(by_name, 3, b"{}")).status == 200
            assert slept == [1.0, 1.0]  # and the name now waits at 127.0.0.1
        finally:
            await sender.close()
    assert len(box.deliveries) == 3
    assert sender.budget_counters["waits"] == 2


async def test_what_waits_past_the_queue_for_a_spent_destination_is_dead_lettered_so(
    tmp_path: Path,
) -> None:
    """Deliveries that cannot all wait for their destination's budget go to the dead letters
    (the queue's bound), counted apart from a slow receiver's overflow and saying why."""
    settings = WebhookSettings(queue=2, destination_rate=0.1, destination_burst=1)
    async with (
        running_server(_config(tmp_path, settings)) as running,
        receiver(secret="s" * 16) as box,
    ):
        key = _keys(running, 1)[0]
        made = (await _aim(running, key, box.url, 1))[0].json()
        await running.push(venue_event())
        await until(lambda: len(box.deliveries) == 1, what="the burst's one")
        await running.push(*(venue_event() for _ in range(4)))  # one waits 10 s, one queued
        async with httpx.AsyncClient(
            base_url=running.url, headers={"Authorization": f"Bearer {key}"}
        ) as http:
            for _ in range(100):
                letters = (await http.get(f"/v1/webhooks/{made['id']}/dead-letters")).json()
                if letters["total"] == 2:
                    break
                await asyncio.sleep(0.05)
        metrics = await _metrics(running)
    assert letters["total"] == 2
    assert all("over its budget of 0.1 deliveries/s" in x["error"] for x in letters["dead_letters"])
    assert 'outcome="overflow_budget"} 2' in metrics
    assert 'outcome="overflow"}' not in metrics
    assert "purpleflea_webhook_destinations_throttled 1" in metrics
    assert len(box.deliveries) == 1


async def test_a_replay_waits_for_a_turn_only_within_what_is_left_of_its_budget(
    tmp_path: Path,
) -> None:
    """A replay answers a request (the SDK gives up after 10 s): each letter may wait for its
    destination's turn only for what is left of the replay's ~3 s, not 3 s again each."""
    from purpleflea.server.webhook_sender import replay_dead_letters
    from purpleflea.store.webhooks import DeadLetter, open_webhook_store

    now = [0.0]

    async def sleep(seconds: float) -> None:
        now[0] += seconds

    # One delivery per 2.9 s after a burst of one: each letter after the first waits 2.9 s.
    limits = BudgetLimits(rate=1 / 2.9, burst=1, bytes_per_s=0.0)
    budget = DestinationBudget(limits, clock=lambda: now[0])
    sender = Sender(WebhookSettings(), allow_private=True, budget=budget, sleep=sleep)
    store = open_webhook_store(str(tmp_path / "hooks.sqlite"))
    async with receiver(secret="s" * 16) as box:
        webhook = Webhook(
            id="wh_r", account="a", url=box.url, secret="s" * 16, filters={}, created_at=0
        )
        assert await store.add(webhook, per_account=10) is None
        letters = [
            DeadLetter(webhook_id="wh_r", seq=n, body=b"{}", attempts=1, error="x", failed_at=0)
            for n in range(1, 6)
        ]
        await store.add_dead_letters(letters, keep=100)
        try:
            done = await replay_dead_letters(
                store, sender, webhook, limit=100, budget_s=3.0, clock=lambda: now[0]
            )
        finally:
            await sender.close()
            await store.close()
    # The first at once, the second after 2.9 s; the third's turn (2.9 s more) is past the
    # 0.1 s left: not waited for. Before, it was waited for: the replay took 5.8 s of waits.
    assert now[0] <= 3.0
    assert done["delivered"] == 2
    assert done["failed"] is not None
    assert "over its delivery budget" in done["failed"]["error"]
    assert done["remaining"] == 3
    assert len(box.deliveries) == 2


async def test_the_budgets_lookup_of_a_name_is_bounded_by_the_attempts_deadline(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A name whose DNS servers do not answer: the budget's lookup before the attempt waited
    for the resolver's own timeout (outside the attempt's deadline, before every attempt)."""
    import time

    real = socket.getaddrinfo

    def silent(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host in ("dead-dns.victim.test", b"dead-dns.victim.test"):
            time.sleep(2.0)  # a resolver waiting for servers that do not answer
            raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", silent)
    sender = Sender(WebhookSettings(timeout_s=0.3), allow_private=True)
    webhook = Webhook(
        id="wh_d",
        account="a",
        url="http://dead-dns.victim.test:9/hook",
        secret="s" * 16,
        filters={},
        created_at=0,
    )
    loop = asyncio.get_running_loop()
    started = loop.time()
    try:
        outcome = await sender.send(webhook, 1, b"{}")
    finally:
        await sender.close()
    assert loop.time() - started < 1.5  # the attempt's 0.3 s, not the resolver's 2 s
    assert outcome.status is None
    assert "timeout" in outcome.error
    assert "dead-dns.victim.test" in outcome.error
