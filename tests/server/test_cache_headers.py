"""Answers that belong to one account must never be kept by a cache.

Keys travel in ``X-API-Key`` or ``?api_key=`` as well as ``Authorization``, and HTTP caches
(RFC 9111 3.5) hold back only for ``Authorization``: a shared cache in front of the server
(a CDN, ``proxy_cache``, a corporate proxy on plain http) may store a 200 it has no
``Cache-Control`` for and hand it to the next asker of the same URL, whose key it never
looks at, and a browser keeps it on disk. Every answer with ``Cache-Control: no-store``.
"""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.server.conftest import make_config, running_server


async def test_every_api_answer_says_no_store(tmp_path: Path) -> None:
    async with (
        running_server(make_config(tmp_path)) as live,
        httpx.AsyncClient(base_url=live.url, timeout=10) as client,
    ):
        key = {"X-API-Key": live.key}
        made = await client.post("/v1/webhooks", json={"url": "https://example.com/h"}, headers=key)
        assert made.status_code == 201, made.text
        answers = {
            # The key, the webhook's secret: shown once, on a POST (not stored by
            # caches without explicit freshness, but nothing should say otherwise).
            "a registration": await client.post("/v1/keys", json={"account": "bob"}),
            "a created webhook": made,
            "the account's keys": await client.get("/v1/keys", headers=key),
            "the account's webhooks (their URLs)": await client.get("/v1/webhooks", headers=key),
            "a key in the query": await client.get("/v1/keys", params={"api_key": live.key}),
            "dead letters": await client.get(
                f"/v1/webhooks/{made.json()['id']}/dead-letters", headers=key
            ),
            "history": await client.get("/v1/liquidations", headers=key),
            "cascades": await client.get("/v1/cascades", headers=key),
            "a refusal": await client.get("/v1/liquidations"),
            "a missing route": await client.get("/v1/nope"),
            "health": await client.get("/v1/health"),
        }
        for what, answer in answers.items():
            assert answer.headers.get("cache-control") == "no-store", (what, answer.headers)


async def test_an_event_stream_says_no_store(tmp_path: Path) -> None:
    async with (
        running_server(make_config(tmp_path)) as live,
        httpx.AsyncClient(base_url=live.url, timeout=10) as client,
        client.stream("GET", "/v1/stream/sse", headers={"X-API-Key": live.key}) as stream,
    ):
        assert stream.status_code == 200
        assert stream.headers["cache-control"] == "no-store"
