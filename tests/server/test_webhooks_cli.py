"""``purpleflea webhooks ...`` against a running server, through the SDK's webhook methods."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from purpleflea import cli
from purpleflea.server.webhook_policy import WebhookSettings
from tests.server.conftest import Running, make_config, running_server, venue_event
from tests.server.webhook_receiver import receiver, until

FAST = WebhookSettings(attempts=2, backoff_s=0.01, backoff_max_s=0.02)


async def _cli(
    running: Running, capsys: pytest.CaptureFixture[str], *args: str
) -> tuple[int, str, str]:
    argv = ["webhooks", "--url", running.url, "--api-key", running.key, *args]
    status = await asyncio.to_thread(cli.main, argv)
    out, err = capsys.readouterr()
    return status, out, err


async def test_the_cli_manages_webhooks_and_replays_dead_letters(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    async with (
        running_server(
            make_config(tmp_path, webhooks=FAST, rate_per_s=1e3, rate_burst=1e3)
        ) as running,
        receiver(then=503) as box,
    ):
        status, out, _ = await _cli(
            running,
            capsys,
            "--json",
            "create",
            box.url,
            "--min-usd",
            "50000",
            "--market",
            "BTC-PERP",
            "--channel",
            "liquidations",
        )
        assert status == 0
        made = json.loads(out)
        box.secret = made["secret"]
        assert made["filters"]["markets"] == ["BTC-PERP"]
        assert made["filters"]["min_usd"] == 50_000

        status, out, _ = await _cli(running, capsys, "list")
        assert status == 0
        assert made["id"] in out
        assert box.url in out
        assert made["secret"] not in out

        event = venue_event(size_usd=80_000)
        await running.push(event)
        await until(lambda: len(box.deliveries) == 2, what="both attempts")
        for _ in range(300):
            status, out, _ = await _cli(running, capsys, "--json", "dead-letters", made["id"])
            assert status == 0
            if json.loads(out)["total"] == 1:
                break
            await asyncio.sleep(0.1)
        letter = json.loads(out)["dead_letters"][0]
        assert letter["frame"]["data"]["id"] == event.id
        assert letter["error"] == "HTTP 503"
        status, out, _ = await _cli(running, capsys, "dead-letters", made["id"])
        # "(0 dropped: the list was full)" followed it: the list was not full.
        assert out.splitlines()[0] == "1 dead letters"
        assert "attempts 2: HTTP 503" in out

        box.then = 200
        # --limit 0 was sent as no limit, the route's 100: it would have replayed the letter.
        status, _, err = await _cli(running, capsys, "replay", made["id"], "--limit", "0")
        assert status == 2
        assert "limit must be between 1 and 1000, got 0" in err
        status, out, _ = await _cli(running, capsys, "replay", made["id"])
        assert status == 0
        assert out.strip() == "delivered 1, 0 left"
        assert box.answered(200)[0].frame["data"]["id"] == event.id  # type: ignore[index]

        status, out, _ = await _cli(running, capsys, "delete", made["id"])
        assert (status, out.strip()) == (0, f"deleted {made['id']}")
        status, _, err = await _cli(running, capsys, "delete", made["id"])
        assert status == 2
        assert "no webhook" in err
        status, _, err = await _cli(running, capsys, "create", "ftp://example.com/x")
        assert status == 2
        assert "only http and https" in err


async def test_the_sync_client_manages_webhooks(tmp_path: Path) -> None:
    from purpleflea import SyncLiquidationClient

    async with running_server(make_config(tmp_path)) as running:

        def manage() -> tuple[dict[str, Any], list[dict[str, Any]], dict[str, Any]]:
            client = SyncLiquidationClient(running.key, running.url)
            try:
                made = client.create_webhook("https://example.com/pf", sides=["short"])
                listed = client.webhooks()
                letters = client.dead_letters(made["id"])
                client.delete_webhook(made["id"])
                return made, listed, letters
            finally:
                client.close()

        made, listed, letters = await asyncio.to_thread(manage)
        assert made["filters"]["sides"] == ["short"]
        assert [w["id"] for w in listed] == [made["id"]]
        assert letters["dead_letters"] == []
        assert running.server.webhooks is not None
        assert await running.server.webhooks.store.webhooks() == []


async def test_a_webhook_takes_the_streams_filters_by_the_same_names(tmp_path: Path) -> None:
    # create_webhook took neither coverages= (a webhook filter on the server) nor the
    # singular market=/exchange=/side= that stream() and history() take: a TypeError.
    from purpleflea import LiquidationClient

    async with running_server(make_config(tmp_path)) as running:
        client = LiquidationClient(running.key, running.url)
        made = await client.create_webhook(
            "https://example.com/pf", market="BTC-PERP", side="long", coverages="complete"
        )
        await client.aclose()
    assert made["filters"]["markets"] == ["BTC-PERP"]
    assert made["filters"]["sides"] == ["long"]
    assert made["filters"]["coverages"] == ["complete"]


async def test_the_cli_lists_every_filter_of_a_webhook_in_full(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # `webhooks list` cut the filters to 30 characters: the docs' example (channels
    # liquidations and cascades, --min-usd 1000000, --market BTC-PERP) was listed as
    # "cascades,liquidations >=$1,000", a filter a thousand times smaller and no market; and a
    # webhook's coverages filter (set through the SDK) was never shown.
    from purpleflea import LiquidationClient

    async with running_server(make_config(tmp_path)) as running:
        status, _, _ = await _cli(
            running,
            capsys,
            "create",
            "https://example.com/pf",
            "--min-usd",
            "1000000",
            "--market",
            "BTC-PERP",
            "--channel",
            "liquidations",
            "--channel",
            "cascades",
        )
        assert status == 0
        client = LiquidationClient(running.key, running.url)
        await client.create_webhook("https://example.com/other", coverages="complete")
        await client.aclose()
        status, out, _ = await _cli(running, capsys, "list")
    assert status == 0
    header, *rows = out.splitlines()
    assert len(rows) == 2
    by_url = {row.split()[-1]: row for row in rows}
    assert ">=$1,000,000 BTC-PERP" in by_url["https://example.com/pf"]
    assert "complete" in by_url["https://example.com/other"]
    # The URL column still lines up under its heading.
    assert {row.index("https://") for row in rows} == {header.index("URL")}
