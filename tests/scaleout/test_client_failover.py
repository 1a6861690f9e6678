"""The SDK given several servers: it uses the first that answers and resumes there."""

from __future__ import annotations

from pathlib import Path

import pytest

import purpleflea
from purpleflea.model import Liquidation
from tests.ports import refused_url
from tests.server.conftest import make_config, running_server, venue_event


def test_servers_come_from_a_list_commas_or_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    one = purpleflea.LiquidationClient("pf_x", "http://a:1/")
    assert one.servers == ("http://a:1",)
    assert one.base_url == "http://a:1"
    assert one.ws_url == "ws://a:1/v1/stream"
    listed = purpleflea.LiquidationClient("pf_x", ["http://a:1", "https://b:2/"])
    assert listed.servers == ("http://a:1", "https://b:2")
    assert purpleflea.LiquidationClient("pf_x", "http://a:1, http://b:2").servers == (
        "http://a:1",
        "http://b:2",
    )
    monkeypatch.setenv("PURPLEFLEA_URL", "http://c:3,http://d:4")
    assert purpleflea.LiquidationClient("pf_x").servers == ("http://c:3", "http://d:4")
    with pytest.raises(ValueError, match="must start with http"):
        purpleflea.LiquidationClient("pf_x", "http://a:1,b:2")
    with pytest.raises(ValueError, match="names no server"):
        purpleflea.LiquidationClient("pf_x", " , ")


async def test_rest_and_stream_skip_a_dead_server(tmp_path: Path) -> None:
    with refused_url() as dead:  # nothing listens there: refused at once
        async with running_server(make_config(tmp_path)) as live:
            await live.push(venue_event(), venue_event())
            client = purpleflea.LiquidationClient(live.key, [dead, live.url])
            page = await client.history()
            assert [e.seq for e in page.events] == [2, 1]
            assert client.base_url == live.url  # REST calls stay on the one that answered

            stream_client = purpleflea.LiquidationClient(live.key, f"{dead},{live.url}")
            async with stream_client.stream(since_seq=0, max_backoff=0.2) as stream:
                assert stream.server == live.url
                await live.push(venue_event())
                seen: list[int] = []
                async for item in stream:
                    assert isinstance(item, Liquidation)
                    seen.append(item.seq)
                    if len(seen) == 3:
                        break
            assert seen == [1, 2, 3]
            await client.aclose()


async def test_when_every_server_is_down_rest_raises_as_with_one() -> None:
    with refused_url() as dead:
        for servers in ([dead], [dead] * 2):
            client = purpleflea.LiquidationClient("pf_x", servers)
            with pytest.raises(purpleflea.ServerUnreachableError):
                await client.history()
            await client.aclose()
