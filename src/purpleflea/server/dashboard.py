"""The web dashboard: a static page at ``/`` and its assets under ``/static/``.

The page (``web/``) is plain HTML, CSS and ES modules with no build step and nothing loaded
from elsewhere; it talks to the same REST and WebSocket API as every other client, with the
key the user enters (kept in the browser's localStorage). The files live inside the package,
so the wheel ships them (hatchling includes every file under ``src/purpleflea``).
"""

from __future__ import annotations

import hashlib
import mimetypes
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.types import Receive, Scope, Send

WEB_DIR = Path(__file__).parent / "web"

#: The page loads only its own files and talks only to its own origin, so injected markup
#: (should server text ever slip through unescaped) can neither run inline script nor
#: send data elsewhere.
_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    # A new release must not run old cached modules against a new API: revalidate each load
    # (the ETag makes that a 304 without a body).
    "Cache-Control": "no-cache",
}
#: Types of the files the page is made of, whatever the machine's mime.types says.
_TYPES = {
    ".html": "text/html",
    ".js": "text/javascript",
    ".css": "text/css",
    ".svg": "image/svg+xml",
}


@dataclass(frozen=True)
class Asset:
    """One file of the page, as it is served."""

    body: bytes
    media_type: str
    etag: str


def load_assets(directory: Path) -> dict[str, Asset]:
    """Every file under ``directory`` by its path below it (``js/api.js``), read once.

    Served from memory, a file costs a request what any small answer does: from disk
    (Starlette's ``StaticFiles``: a stat and an open and a read, each on a worker thread)
    it cost 1-2 ms of server CPU, 4-8 times a ``GET /v1/health``, for anyone, without a key
    (bench/costly_heads.py). The page is ~120 KB, and a path that is not a key here is a 404
    without touching the file system (``..`` is no key)."""
    assets: dict[str, Asset] = {}
    for path in sorted(directory.rglob("*")):
        if not path.is_file():
            continue
        body = path.read_bytes()
        media_type = _TYPES.get(path.suffix) or mimetypes.guess_type(path.name)[0]
        assets[path.relative_to(directory).as_posix()] = Asset(
            body=body,
            media_type=media_type or "application/octet-stream",
            etag=f'"{hashlib.sha256(body).hexdigest()[:32]}"',
        )
    return assets


def _unchanged(if_none_match: str, etag: str) -> bool:
    """Whether ``If-None-Match`` names ``etag`` (RFC 9110 13.1.2: weak comparison)."""
    tags = (tag.strip().removeprefix("W/") for tag in if_none_match.split(","))
    return any(tag in (etag, "*") for tag in tags)


def _answer(asset: Asset, if_none_match: str) -> Response:
    headers = {**_HEADERS, "ETag": asset.etag}
    if if_none_match and _unchanged(if_none_match, asset.etag):
        return Response(status_code=304, headers=headers)
    return Response(asset.body, media_type=asset.media_type, headers=headers)


class _Assets:
    """``/static/...``: the page's files from memory, with its security and caching headers."""

    def __init__(self, assets: dict[str, Asset]) -> None:
        self.assets = assets

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["method"] not in ("GET", "HEAD"):
            raise HTTPException(405, headers={"Allow": "GET, HEAD"})
        # The Mount leaves the whole path and puts its own prefix in root_path.
        path: str = scope["path"].removeprefix(scope.get("root_path", "")).lstrip("/")
        asset = self.assets.get(path)
        if asset is None:
            raise HTTPException(404)
        request = Request(scope)
        await _answer(asset, request.headers.get("if-none-match", ""))(scope, receive, send)


def _page(asset: Asset) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        return _answer(asset, request.headers.get("if-none-match", ""))

    return endpoint


def routes() -> list[BaseRoute]:
    """``/`` (the page), ``/favicon.ico`` and ``/static/...`` (its scripts, styles, icon),
    read from :data:`WEB_DIR` now and served from memory."""
    assets = load_assets(WEB_DIR)
    return [
        Route("/", _page(assets["index.html"]), methods=["GET", "HEAD"]),
        # The page links /static/favicon.svg; tools that ask for /favicon.ico get it too.
        Route("/favicon.ico", _page(assets["favicon.svg"]), methods=["GET", "HEAD"]),
        Mount("/static", app=_Assets(assets), name="static"),
    ]
