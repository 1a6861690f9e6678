"""A tracker on loopback answers only requests addressed to loopback: a web page that rebinds
its own name to 127.0.0.1 must not register an account, read its key, or make the tracker
POST to private addresses through a webhook."""

from __future__ import annotations

import logging
import socket
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from starlette.types import Message, Receive, Scope, Send
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from purpleflea.server.host_check import (
    LOGGED_NAMES,
    REMEMBERED_HOSTS,
    AddressedHostOnly,
    HostNames,
    loopback_bind,
    loopback_name,
)
from tests.server.conftest import Running, make_config, running_server


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
        with pytest.raises(InvalidStatus) as refused:
            async with _stream_as(live, "evil.example:8000"):
                pass
        assert refused.value.response.status_code == 421
        async with _stream_as(live, "localhost") as ws:  # its own name: the stream opens
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


# A server bound to another address than loopback (all interfaces, a LAN address): a page on
# the LAN makes its own name resolve to the tracker's address and talks to it as its own
# origin (Origin and Host are both the page's name, so the cross-site check passes).
NON_LOOPBACK_BINDS = ["0.0.0.0", "::", "192.168.1.4"]


def _stream_as(live: Running, host: str) -> connect:
    """A WebSocket to ``live``'s stream whose handshake says ``Host: host`` (the URL's name;
    the connection goes to the server's address). ``additional_headers`` cannot: a second
    Host header makes the request invalid (400), whatever the name."""
    port = urlsplit(live.url).port
    url = f"ws://{host}/v1/stream?api_key={live.key}"
    return connect(url, host="127.0.0.1", port=port, proxy=None)


def _misdirected(answer: httpx.Response, host: str) -> None:
    assert answer.status_code == 421, answer.text
    error = answer.json()["error"]
    assert error["code"] == "misdirected"
    assert repr(host) in error["message"], error["message"]
    assert "--allowed-host" in error["message"]


@pytest.mark.parametrize("bind", NON_LOOPBACK_BINDS)
async def test_a_rebound_page_gets_nothing_from_a_server_on_another_address(
    tmp_path: Path, bind: str
) -> None:
    # The app as `serve --host BIND` builds it; the test's socket is still on 127.0.0.1.
    async with running_server(make_config(tmp_path, host=bind)) as live:
        rebound = {"Host": "evil.example:8000", "Origin": "http://evil.example:8000"}
        async with httpx.AsyncClient(base_url=live.url) as http:
            _misdirected(
                await http.post("/v1/keys", json={"account": "x"}, headers=rebound),
                "evil.example:8000",
            )
            _misdirected(await http.get("/", headers=rebound), "evil.example:8000")
            keyed = {**rebound, "Authorization": f"Bearer {live.key}"}
            _misdirected(await http.get("/v1/markets", headers=keyed), "evil.example:8000")
            sse = await http.get("/v1/stream/sse", params={"api_key": live.key}, headers=rebound)
            _misdirected(sse, "evil.example:8000")
            metrics = (await http.get("/v1/metrics")).text
            assert 'purpleflea_http_client_errors_total{kind="misdirected"} 4' in metrics
        with pytest.raises(InvalidStatus) as refused:
            async with _stream_as(live, "evil.example:8000"):
                pass
        assert refused.value.response.status_code == 421
        assert b"'evil.example:8000'" in refused.value.response.body
        async with _stream_as(live, "192.168.1.4:8000") as ws:  # an IP address: it opens
            assert ws.protocol.state.name == "OPEN"


@pytest.mark.parametrize("bind", NON_LOOPBACK_BINDS)
@pytest.mark.parametrize(
    "host",
    [
        "192.168.1.4:8000",  # the LAN address a user types (a rebound page cannot send one)
        "10.0.0.5",
        "[fe80::1]:8000",
        "[2001:db8::5]",
        "127.0.0.1:8000",
        "localhost:8000",
        socket.gethostname(),  # this machine's own names
        socket.gethostname().upper() + ":8000",
        socket.getfqdn(),
    ],
)
async def test_addresses_and_this_machines_names_are_answered(
    tmp_path: Path, bind: str, host: str
) -> None:
    async with (
        running_server(make_config(tmp_path, host=bind)) as live,
        httpx.AsyncClient(base_url=live.url) as http,
    ):
        answer = await http.get("/v1/health", headers={"Host": host})
        assert answer.status_code == 200, answer.text


async def test_names_the_operator_allows_on_another_address(tmp_path: Path) -> None:
    allowed = ("tracker.example.com", ".lan.example", "*.corp.example")
    async with running_server(make_config(tmp_path, host="0.0.0.0", allowed_hosts=allowed)) as live:
        async with httpx.AsyncClient(base_url=live.url) as http:

            async def status(host: str) -> int:
                return (await http.get("/v1/health", headers={"Host": host})).status_code

            assert await status("Tracker.Example.com:443") == 200
            assert await status("lan.example") == 200  # .NAME: the name and its subdomains
            assert await status("api-1.lan.example:8000") == 200
            assert await status("a.b.corp.example") == 200  # *.NAME: its subdomains
            assert await status("corp.example") == 421
            assert await status("evil-lan.example") == 421
            assert await status("lan.example.evil.example") == 421
            assert await status("evil.example") == 421
        async with _stream_as(live, "api-1.lan.example") as ws:
            assert ws.protocol.state.name == "OPEN"


async def test_any_name_is_the_operators_explicit_choice(tmp_path: Path) -> None:
    config = make_config(tmp_path, host="0.0.0.0", allowed_hosts=("*",))
    async with running_server(config) as live, httpx.AsyncClient(base_url=live.url) as http:
        assert (await http.get("/v1/health", headers={"Host": "evil.example"})).status_code == 200
        # Not an opt-out of the cross-site check: a write another origin's page sends.
        write = await http.post(
            "/v1/keys",
            json={"account": "x"},
            headers={"Host": "tracker.example", "Origin": "http://evil.example"},
        )
        assert write.status_code == 403, write.text


async def test_a_refused_name_is_logged_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with (
        running_server(make_config(tmp_path, host="0.0.0.0")) as live,
        httpx.AsyncClient(base_url=live.url) as http,
    ):
        with caplog.at_level(logging.WARNING, logger="purpleflea.server"):
            for _ in range(3):
                await http.get("/v1/health", headers={"Host": "tracker.example.com"})
            await http.get("/v1/health", headers={"Host": "TRACKER.example.com:8443"})
            await http.get("/v1/health", headers={"Host": "other.example"})
    lines = [r.getMessage() for r in caplog.records if "misdirected" in r.getMessage()]
    assert len(lines) == 2, lines
    assert "'tracker.example.com'" in lines[0]
    assert "--allowed-host 'tracker.example.com'" in lines[0]
    assert "'other.example'" in lines[1]


@pytest.mark.parametrize(
    "value", ["http://tracker.example", "a*b.example", "*.", "", "a..b", "é" * 64 + ".example"]
)
def test_an_allowed_host_that_is_no_name_is_refused_naming_it(tmp_path: Path, value: str) -> None:
    with pytest.raises(ValueError, match="allowed host") as refused:
        make_config(tmp_path, host="0.0.0.0", allowed_hosts=(value,))
    assert repr(value) in str(refused.value)


async def test_names_past_the_logged_ones_are_summed_up(caplog: pytest.LogCaptureFixture) -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        raise AssertionError("a refused request reached the app")

    counts: dict[str, int] = {}
    guard = AddressedHostOnly(app, HostNames("0.0.0.0"), counts)
    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    def scope(host: str) -> Scope:
        return {"type": "http", "method": "GET", "path": "/", "headers": [(b"host", host.encode())]}

    with caplog.at_level(logging.WARNING, logger="purpleflea.server"):
        for i in range(LOGGED_NAMES + 30):
            await guard(scope(f"n{i}.example"), receive, send)
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == LOGGED_NAMES + 1, lines[-3:]
    assert "refused 1 more request(s)" in lines[-1]  # the first past them; the rest wait a minute
    assert counts["misdirected"] == LOGGED_NAMES + 30
    assert (
        sum(m["type"] == "http.response.start" and m["status"] == 421 for m in sent)
        == LOGGED_NAMES + 30
    )


def test_remembered_answers_stay_right_and_bounded() -> None:
    names = HostNames("0.0.0.0", ["tracker.example.com"], machine=["vm"])
    for i in range(REMEMBERED_HOSTS * 2 + 5):  # a client sending a new name each time
        assert names.answers(f"n{i}.example") is False
        assert names.answers("tracker.example.com:443") is True
        assert len(names._answered) <= REMEMBERED_HOSTS
    assert names.answers("VM") is True
    assert names.answers("10.1.2.3") is True


def test_a_name_in_another_script_is_answered_as_browsers_send_it() -> None:
    # Browsers send an internationalised name in its IDNA form (xn--...): allowed as typed,
    # it was never matched, and the refusal told the operator to allow the xn-- name.
    names = HostNames("0.0.0.0", ["Bücher.example", "*.café.example", ".dévs.example"])
    assert names.answers("xn--bcher-kva.example:8443")
    assert names.answers("shop.xn--caf-dma.example")
    assert not names.answers("xn--caf-dma.example")
    assert names.answers("xn--dvs-bma.example")
    assert names.answers("a.xn--dvs-bma.example")
    assert not names.answers("xn--bcher-kva.example.evil.example")


@pytest.mark.parametrize("bind", ["127.0.0.1", "0.0.0.0"])
@pytest.mark.parametrize("host", ["", "*", "*.evil.example", "a..b"])
def test_a_refusal_names_no_flag_value_the_server_would_refuse_or_that_opens_it(
    bind: str, host: str
) -> None:
    # An empty Host was told to start the server with --allowed-host '' (which refuses to
    # start), a Host of '*' with --allowed-host '*' (the opt-out of the whole guard).
    message = HostNames(bind).refusal(host)
    assert "--allowed-host NAME" in message, message
    assert f"--allowed-host {host!r}" not in message
    assert "--allowed-host 'evil.example'" in HostNames(bind).refusal("evil.example:80")
