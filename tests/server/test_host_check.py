"""A tracker on loopback answers only requests addressed to loopback: a web page that rebinds
its own name to 127.0.0.1 must not register an account, read its key, or make the tracker
POST to private addresses through a webhook."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from purpleflea.server.host_check import loopback_bind, loopback_name
from tests.server.conftest import make_config, running_server


@pytest.mark.parametrize(
    ("header", "loopback"),
    [
        ("127.0.0.1:8000", True),
        ("127.0.0.1", True),
        ("127.1.2.3:9", True),
        ("localhost:8000", True),
        ("LOCALHOST", True),
        ("app.localhost:8000", True),
        ("[::1]:8000", True),
        ("::1", True),
        # The fully qualified spellings (curl and browsers send the trailing dot as typed).
        ("localhost.:8000", True),
        ("LOCALHOST.", True),
        ("app.localhost.:8000", True),
        ("127.0.0.1.:8000", True),
        ("[::1%25lo]:8000", True),
        ("evil.example:8000", False),
        ("evil.example.:8000", False),
        ("localhost..:8000", False),
        ("127.0.0.1.evil.example", False),
        ("localhost.evil.example:8000", False),
        ("10.0.0.5:8000", False),
        ("[::ffff:8.8.8.8]:80", False),
        ("", False),
    ],
)
def test_loopback_names(header: str, loopback: bool) -> None:
    assert loopback_name(header) is loopback


def test_loopback_binds() -> None:
    assert loopback_bind("127.0.0.1")
    assert loopback_bind("localhost")
    assert loopback_bind("::1")
    assert loopback_bind("[::1]")
    # Any spelling of the name: a bind that escaped the check served rebound pages.
    assert loopback_bind("LOCALHOST")
    assert loopback_bind("localhost.")
    assert not loopback_bind("0.0.0.0")
    assert not loopback_bind("192.168.1.4")


async def test_a_rebound_page_gets_nothing_from_a_loopback_server(tmp_path: Path) -> None:
    async with running_server(make_config(tmp_path)) as live:  # binds 127.0.0.1
        rebound = {"Host": "evil.example:8000"}
        async with httpx.AsyncClient(base_url=live.url) as http:
            registered = await http.post("/v1/keys", json={"account": "x"}, headers=rebound)
            assert registered.status_code == 421, registered.text
            assert registered.json()["error"]["code"] == "misdirected"
            page = await http.get("/", headers=rebound)
            assert page.status_code == 421
            markets = await http.get(
                "/v1/markets", headers={**rebound, "Authorization": f"Bearer {live.key}"}
            )
            assert markets.status_code == 421
            # Addressed to it, it answers as before.
            assert (await http.get("/v1/health")).status_code == 200
            assert (await http.get("/v1/health", headers={"Host": "localhost"})).status_code == 200
        ws_url = live.url.replace("http", "ws") + f"/v1/stream?api_key={live.key}"
        with pytest.raises(InvalidStatus):
            async with connect(ws_url, additional_headers=rebound):
                pass
        async with connect(ws_url) as ws:  # its own name: the stream opens
            assert ws.protocol.state.name == "OPEN"


async def test_a_name_the_operator_allows_is_answered_and_private_webhooks_are_off(
    tmp_path: Path,
) -> None:
    # A reverse proxy on this machine (Caddy, nginx with proxy_set_header Host $host) passes
    # its public name on: without --allowed-host every request got 421.
    config = make_config(tmp_path, allowed_hosts=("tracker.example.com",))
    async with running_server(config) as live:
        async with httpx.AsyncClient(base_url=live.url) as http:
            public = {"Host": "Tracker.Example.com:443"}
            assert (await http.get("/v1/health", headers=public)).status_code == 200
            other = await http.get("/v1/health", headers={"Host": "evil.example"})
            assert other.status_code == 421
            assert "--allowed-host" in other.json()["error"]["message"]
        assert live.server.webhooks is not None
        assert live.server.webhooks.sender.allow_private is False  # others' requests come in
