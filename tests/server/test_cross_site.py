"""A web page on another site must not change anything on the tracker through its visitors.

A page may send a visitor's browser to the tracker with a "simple" request, one the browser
sends without asking the server first (a form, or ``fetch(..., {mode: "no-cors"})``: POST
with a ``text/plain`` body). The page cannot read the answer, but what the request does is
done: without a check a page on evil.example registered accounts from every visitor's
address (spending each visitor's registration budget, so the visitor's own registration was
then refused), and any key in its URL was a key to revoke or to add webhooks with.

Browsers say where a request comes from (``Sec-Fetch-Site``, and ``Origin`` on every
cross-origin POST); programs (curl, the SDK, the CLI) send neither and are served as before.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from purpleflea.server.cross_site import own_origin
from purpleflea.server.host_check import HostNames
from tests.server.conftest import make_config, running_server

#: What Chromium sends with a no-cors POST from a page on http://evil.example.
CROSS_SITE = {
    "Origin": "http://evil.example",
    "Sec-Fetch-Site": "cross-site",
    "Sec-Fetch-Mode": "no-cors",
    "Content-Type": "text/plain;charset=UTF-8",
}


async def test_a_cross_site_page_cannot_register_from_its_visitors(tmp_path: Path) -> None:
    async with (
        running_server(make_config(tmp_path, registrations_per_min=3)) as live,
        httpx.AsyncClient(base_url=live.url, timeout=10) as client,
    ):
        for i in range(5):
            answer = await client.post(
                "/v1/keys", content=f'{{"account": "drive-by-{i}"}}', headers=CROSS_SITE
            )
            assert answer.status_code == 403, answer.text
            assert answer.json()["error"]["code"] == "cross_site_request"
        assert not any(row.account.startswith("drive-by") for row in live.server.keys.list_keys())
        # The visitor's own registration, from the dashboard, still has its whole budget.
        own = await client.post(
            "/v1/keys",
            json={"account": "visitor", "name": "dashboard"},
            headers={"Origin": live.url, "Sec-Fetch-Site": "same-origin"},
        )
        assert own.status_code == 201, own.text


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param(CROSS_SITE, id="cross-site"),
        # Another port of this machine is the same site but another origin.
        pytest.param({"Origin": "http://127.0.0.1:1", "Sec-Fetch-Site": "same-site"}, id="site"),
        # A browser that sends no Sec-Fetch-Site (an older one, or a plain-http origin that
        # is not loopback): its Origin names another host than the request's Host.
        pytest.param({"Origin": "http://evil.example"}, id="origin-only"),
        # A sandboxed frame or a data: URL.
        pytest.param({"Origin": "null"}, id="opaque-origin"),
    ],
)
async def test_cross_site_writes_with_a_key_in_the_url_are_refused(
    tmp_path: Path, headers: dict[str, str]
) -> None:
    async with (
        running_server(make_config(tmp_path)) as live,
        httpx.AsyncClient(base_url=live.url, timeout=10) as client,
    ):
        key = {"X-API-Key": live.key}
        spare = (await client.post("/v1/keys", json={"name": "spare"}, headers=key)).json()
        hook = await client.post("/v1/webhooks", json={"url": "https://example.com/h"}, headers=key)
        assert hook.status_code == 201, hook.text
        in_url = {"api_key": live.key}
        writes = {
            "mint a key": await client.post(
                "/v1/keys", params=in_url, content='{"name": "x"}', headers=headers
            ),
            "revoke a key": await client.delete(
                f"/v1/keys/{spare['key_id']}", params=in_url, headers=headers
            ),
            "add a webhook": await client.post(
                "/v1/webhooks",
                params=in_url,
                content='{"url": "https://evil.example/h"}',
                headers=headers,
            ),
            "delete a webhook": await client.delete(
                f"/v1/webhooks/{hook.json()['id']}", params=in_url, headers=headers
            ),
        }
        for what, answer in writes.items():
            assert answer.status_code == 403, (what, answer.text)
            assert answer.json()["error"]["code"] == "cross_site_request", what
        assert len((await client.get("/v1/webhooks", headers=key)).json()["webhooks"]) == 1
        listed = (await client.get("/v1/keys", headers=key)).json()["keys"]
        assert [k["revoked_at"] for k in listed if k["key_id"] == spare["key_id"]] == [None]


async def test_programs_and_the_page_itself_are_served(tmp_path: Path) -> None:
    """curl, the SDK and the CLI send no Origin; the dashboard's own requests are same-origin
    (an older browser: its Origin is the tracker's own address)."""
    async with (
        running_server(make_config(tmp_path)) as live,
        httpx.AsyncClient(base_url=live.url, timeout=10) as client,
    ):
        host = live.url.removeprefix("http://")
        served = {
            # curl -d '{"account": ...}' sends a form type; programs send no Origin.
            "curl": await client.post(
                "/v1/keys",
                content='{"account": "curl"}',
                headers={"Content-Type": "application/x-www-form-urlencoded"},
            ),
            "the dashboard": await client.post(
                "/v1/keys",
                json={"account": "page"},
                headers={"Origin": live.url, "Sec-Fetch-Site": "same-origin"},
            ),
            "an older browser on the page": await client.post(
                "/v1/keys", json={"account": "old"}, headers={"Origin": f"http://{host.upper()}"}
            ),
            "typed in the address bar": await client.post(
                "/v1/keys", json={"account": "typed"}, headers={"Sec-Fetch-Site": "none"}
            ),
        }
        for what, answer in served.items():
            assert answer.status_code == 201, (what, answer.text)
        # Reading needs no check: without CORS headers a foreign page cannot read the answer.
        read = await client.get("/v1/health", headers=CROSS_SITE)
        assert read.status_code == 200
        assert "access-control-allow-origin" not in read.headers


@pytest.mark.parametrize(
    ("origin", "host", "own"),
    [
        ("http://127.0.0.1:8000", "127.0.0.1:8000", True),
        ("https://Tracker.Example", "tracker.example", True),
        ("http://[::1]:8000", "[::1]:8000", True),
        ("http://[::1]", "[::1]", True),
        # Another address whose text ends as the port does: not the host and port joined.
        ("http://[::1:8000]", "[::1]:8000", False),
        ("http://[::1]:8000", "[::1:8000]", False),
        ("http://localhost.:8000", "localhost:8000", True),
        # A proxy that passes another Host on: the operator names the public one.
        ("https://tracker.example", "127.0.0.1:8000", True),
        ("http://127.0.0.1:8001", "127.0.0.1:8000", False),
        ("http://127.0.0.1", "127.0.0.1:8000", False),
        ("http://evil.example:8000", "127.0.0.1:8000", False),
        ("http://tracker.example.evil.example", "tracker.example", False),
        ("null", "127.0.0.1:8000", False),
        ("file://", "127.0.0.1:8000", False),
    ],
)
def test_an_origin_is_the_servers_own_by_name_and_port(origin: str, host: str, own: bool) -> None:
    assert own_origin(origin, host, HostNames("127.0.0.1", ["tracker.example"])) is own


@pytest.mark.parametrize(
    ("origin", "own"),
    [
        ("https://api-1.lan.example", True),  # --allowed-host .lan.example: its subdomains
        ("https://lan.example", True),  # and itself
        ("https://evil-lan.example", False),
        ("https://a.corp.example", True),  # --allowed-host *.corp.example
        ("https://corp.example", False),
        ("https://evil.example", False),  # '*' answers any Host, but names no origin
    ],
)
def test_an_origin_the_operator_allowed_by_a_wildcard(origin: str, own: bool) -> None:
    names = HostNames("0.0.0.0", [".lan.example", "*.corp.example", "*"])
    assert own_origin(origin, "10.0.0.5:8000", names) is own
