"""No way around the key: every route of the app, enumerated from its router, refuses
requests that do not carry a valid key the way the API documents it.

A route added later is covered automatically: it counts as protected unless it is listed in
:data:`PUBLIC` (adding a public route is then a deliberate, reviewed edit of this file).
"""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path

import httpx
import pytest
from starlette.routing import Mount, Route, WebSocketRoute
from websockets.asyncio.client import connect

from purpleflea.server.app import build_server, create_app
from tests.reliability.conftest import Running, make_config

#: (method, path) pairs anyone may call; Mount prefixes are listed with method "MOUNT".
PUBLIC = {
    ("GET", "/v1/health"),
    ("GET", "/v1/ready"),  # readiness for load balancers: says only whether it serves
    ("GET", "/v1/exchanges"),  # the exchange list, for the dashboard's filter before a key
    ("GET", "/v1/metrics"),
    ("GET", "/openapi.json"),
    ("GET", "/"),
    ("GET", "/favicon.ico"),  # the dashboard's icon
    ("POST", "/v1/keys"),  # registration (rate-limited per address)
    ("MOUNT", "/static"),  # the dashboard's own scripts and styles
}


async def enumerate_routes(
    tmp_path: Path,
) -> tuple[list[tuple[str, str]], list[str], set[tuple[str, str]]]:
    """(method, path) of every HTTP route, the WebSocket paths, and every public pair seen."""
    config = make_config(tmp_path / "routes")
    server = build_server(config)
    try:
        app = create_app(config, server=server)
        http_routes: list[tuple[str, str]] = []
        ws_routes: list[str] = []
        seen_public: set[tuple[str, str]] = set()
        for route in app.routes:
            if isinstance(route, WebSocketRoute):
                ws_routes.append(route.path)
            elif isinstance(route, Route):
                for method in sorted((route.methods or {"GET"}) - {"HEAD"}):
                    pair = (method, route.path)
                    if pair in PUBLIC:
                        seen_public.add(pair)
                    else:
                        http_routes.append(pair)
            elif isinstance(route, Mount):
                assert ("MOUNT", route.path) in PUBLIC, f"unreviewed mount {route.path}"
                seen_public.add(("MOUNT", route.path))
            else:
                raise AssertionError(f"unknown route type {route!r}: teach this test about it")
        return http_routes, ws_routes, seen_public
    finally:
        server.keys.close()
        await server.store.close()


def concrete(path: str) -> str:
    """A path template with its parameters filled (``/v1/keys/{key_id}`` -> ``/v1/keys/x...``)."""
    return re.sub(r"\{[^}]+\}", "AbCd1234", path)


def bad_credentials(key: str, revoked: str) -> list[tuple[str, dict[str, str], dict[str, str]]]:
    """(what, headers, query) tries that must all be refused."""
    basic = base64.b64encode(f"{key}:".encode()).decode()
    return [
        ("no key", {}, {}),
        ("basic scheme", {"Authorization": f"Basic {basic}"}, {}),
        ("token scheme", {"Authorization": f"Token {key}"}, {}),
        ("no scheme", {"Authorization": key}, {}),
        ("empty bearer", {"Authorization": "Bearer"}, {}),
        ("bearer of junk", {"Authorization": "Bearer  -"}, {}),
        ("cookie", {"Cookie": f"api_key={key}"}, {}),
        ("other header", {"Api-Key": key}, {}),
        ("other query name", {}, {"apikey": key}),
        ("key query name", {}, {"key": key}),
        ("truncated key", {"Authorization": f"Bearer {key[:-4]}"}, {}),
        ("key plus junk", {"X-API-Key": key + "A"}, {}),
        ("upper-cased key", {"X-API-Key": key.upper()}, {}),
        ("sql in key", {"X-API-Key": "pf_' OR '1'='1"}, {}),
        ("huge key", {"X-API-Key": "pf_" + "A" * 8_000}, {}),
        ("revoked key", {"Authorization": f"Bearer {revoked}"}, {}),
        ("revoked key in query", {}, {"api_key": revoked}),
    ]


async def _revoked_key(live: Running) -> str:
    doomed = live.server.keys.create("tester", "doomed")
    async with httpx.AsyncClient(base_url=live.url) as http:
        response = await http.delete(
            f"/v1/keys/{doomed.info.key_id}", headers={"Authorization": f"Bearer {live.key}"}
        )
    assert response.status_code == 200, response.text
    return doomed.key


async def test_every_route_is_either_reviewed_public_or_refuses_bad_keys(
    seeded: Running, tmp_path: Path
) -> None:
    http_routes, ws_routes, seen_public = await enumerate_routes(tmp_path)
    assert ("GET", "/v1/liquidations") in http_routes  # the enumeration found the data routes
    assert "/v1/stream" in ws_routes
    assert seen_public == PUBLIC, "a public route was removed: update PUBLIC"
    revoked = await _revoked_key(seeded)
    async with httpx.AsyncClient(base_url=seeded.url) as http:
        for method, path in http_routes:
            url = concrete(path)
            for what, headers, query in bad_credentials(seeded.key, revoked):
                response = await http.request(
                    method, url, headers=headers, params=query, json={"api_key": seeded.key}
                )
                assert response.status_code == 401, (method, path, what, response.text)
                body = response.json()
                assert set(body) == {"error"}, (method, path, what)  # nothing else leaks
                assert body["error"]["code"] in ("missing_api_key", "invalid_api_key")
                assert response.headers["www-authenticate"] == "Bearer"
            # The positive control: the same route with the key where it belongs gets past auth.
            # (Streamed: the SSE route answers 200 and then never ends.)
            good = {"Authorization": f"Bearer {seeded.key}"}
            async with http.stream(method, url, headers=good) as ok:
                assert ok.status_code != 401, (method, path)


@pytest.mark.parametrize("placement", ["bearer", "header", "query"])
async def test_documented_key_placements_all_work(seeded: Running, placement: str) -> None:
    headers, params = {}, {}
    if placement == "bearer":
        headers = {"Authorization": f"Bearer {seeded.key}"}
    elif placement == "header":
        headers = {"X-API-Key": seeded.key}
    else:
        params = {"api_key": seeded.key}
    async with httpx.AsyncClient(base_url=seeded.url) as http:
        response = await http.get("/v1/liquidations", headers=headers, params=params)
    assert response.status_code == 200
    assert len(response.json()["events"]) == 4


async def test_every_websocket_route_refuses_bad_keys(seeded: Running, tmp_path: Path) -> None:
    _, ws_routes, _ = await enumerate_routes(tmp_path)
    revoked = await _revoked_key(seeded)
    base = "ws" + seeded.url[4:]
    for path in ws_routes:
        for what, headers, query in bad_credentials(seeded.key, revoked):
            url = base + concrete(path) + ("?" + "&".join(f"{k}={v}" for k, v in query.items()))
            async with connect(url, additional_headers=headers, max_size=2**20) as ws:
                error = json.loads(await ws.recv())
                assert error["type"] == "error", (path, what)
                assert error["code"] in ("missing_api_key", "invalid_api_key"), (path, what)
                await ws.wait_closed()
            assert ws.close_code == 4401, (path, what)


async def test_one_accounts_key_cannot_list_revoke_or_mint_another_accounts_keys(
    seeded: Running,
) -> None:
    alice = seeded.server.keys.create("alice", "main")
    bob = seeded.server.keys.create("bob", "main")
    as_alice = {"Authorization": f"Bearer {alice.key}"}
    async with httpx.AsyncClient(base_url=seeded.url) as http:
        listed = (await http.get("/v1/keys", headers=as_alice)).json()["keys"]
        assert {k["account"] for k in listed} == {"alice"}
        assert bob.info.key_id not in {k["key_id"] for k in listed}
        for suffix, status in (("", 404), ("?account=bob", 400), ("?api_key=" + bob.key, 404)):
            # ?account= is no parameter of the route: refused before anything is looked up.
            response = await http.delete(f"/v1/keys/{bob.info.key_id}{suffix}", headers=as_alice)
            assert response.status_code == status, (suffix, response.text)
        # Alice's key cannot mint into bob's account: refused, not silently redirected.
        minted = await http.post("/v1/keys", headers=as_alice, json={"account": "bob"})
        assert minted.status_code == 403, minted.text
        assert minted.json()["error"]["code"] == "forbidden"
        minted = await http.post("/v1/keys", headers=as_alice, json={"name": "second"})
        assert minted.status_code == 201
        assert minted.json()["account"] == "alice"
        # Bob's key still works: nothing above touched it.
        ok = await http.get("/v1/keys", headers={"Authorization": f"Bearer {bob.key}"})
        assert ok.status_code == 200
        assert [k["key_id"] for k in ok.json()["keys"]] == [bob.info.key_id]
