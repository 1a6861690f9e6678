"""The dashboard's files are read once and served from memory: for anyone, without a key, a
file from disk cost 1-2 ms of server CPU a request (a stat, an open and a read on worker
threads), 4-8 times a `GET /v1/health` (bench/costly_heads.py, bench/results/attack.md)."""

from __future__ import annotations

import shutil
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette
from starlette.exceptions import HTTPException

from purpleflea.server import dashboard, http


def _app() -> Starlette:
    return Starlette(routes=dashboard.routes(), exception_handlers={HTTPException: http.http_error})


async def test_a_request_reads_no_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    web = tmp_path / "web"
    shutil.copytree(dashboard.WEB_DIR, web)
    monkeypatch.setattr(dashboard, "WEB_DIR", web)
    app = _app()
    expected = (web / "js" / "api.js").read_bytes()
    shutil.rmtree(web)  # what is served was read when the routes were made
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        answer = await client.get("/static/js/api.js")
        assert answer.status_code == 200
        assert answer.content == expected
        assert answer.headers["content-type"] == "text/javascript; charset=utf-8"
        assert (await client.get("/")).text.startswith("<!doctype html>")


async def test_the_page_and_its_files_keep_their_headers_and_revalidate() -> None:
    transport = httpx.ASGITransport(app=_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        for path, media_type in (
            ("/", "text/html; charset=utf-8"),
            ("/favicon.ico", "image/svg+xml"),
            ("/static/favicon.svg", "image/svg+xml"),
            ("/static/style.css", "text/css; charset=utf-8"),
            ("/static/app.js", "text/javascript; charset=utf-8"),
        ):
            answer = await client.get(path)
            assert answer.status_code == 200, path
            assert answer.headers["content-type"] == media_type, path
            assert "frame-ancestors 'none'" in answer.headers["content-security-policy"]
            assert answer.headers["x-content-type-options"] == "nosniff"
            assert answer.headers["cache-control"] == "no-cache"
            etag = answer.headers["etag"]
            # A reload revalidates: the same file is a 304 without a body, a changed one a 200.
            again = await client.get(path, headers={"If-None-Match": f'W/"x", {etag}'})
            assert again.status_code == 304, path
            assert again.content == b""
            assert again.headers["etag"] == etag
            assert (await client.get(path, headers={"If-None-Match": '"x"'})).status_code == 200
            assert (await client.head(path)).content == b""


@pytest.mark.parametrize(
    "path",
    [
        "/static/nope.js",
        "/static/js",  # a folder
        "/static/",
        "/static/..%2f..%2fpyproject.toml",
        "/static/%2e%2e/dashboard.py",
    ],
)
async def test_anything_else_under_static_is_a_404(path: str) -> None:
    transport = httpx.ASGITransport(app=_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        answer = await client.get(path)
    assert answer.status_code == 404, path
    assert answer.json()["error"]["code"] == "not_found"


async def test_only_get_and_head() -> None:
    transport = httpx.ASGITransport(app=_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        answer = await client.post("/static/app.js")
    assert answer.status_code == 405
    assert answer.headers["allow"] == "GET, HEAD"
