"""The web dashboard: a static page at ``/`` and its assets under ``/static/``.

The page (``web/``) is plain HTML, CSS and ES modules with no build step and nothing loaded
from elsewhere; it talks to the same REST and WebSocket API as every other client, with the
key the user enters (kept in the browser's localStorage). The files live inside the package,
so the wheel ships them (hatchling includes every file under ``src/purpleflea``).
"""

from __future__ import annotations

from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import Message, Receive, Scope, Send

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
    # A new release must not run old cached modules against a new API: revalidate each load.
    "Cache-Control": "no-cache",
}
_RAW_HEADERS = [(name.lower().encode(), value.encode()) for name, value in _HEADERS.items()]


class _Assets(StaticFiles):
    """Static files with the page's security and caching headers."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *_RAW_HEADERS]
            await send(message)

        await super().__call__(scope, receive, with_headers)


async def _index(_: Request) -> Response:
    return FileResponse(WEB_DIR / "index.html", media_type="text/html", headers=_HEADERS)


async def _favicon(_: Request) -> Response:
    # The page links /static/favicon.svg; tools that ask for /favicon.ico get it too.
    return FileResponse(WEB_DIR / "favicon.svg", media_type="image/svg+xml", headers=_HEADERS)


def routes() -> list[BaseRoute]:
    """``/`` (the page), ``/favicon.ico`` and ``/static/...`` (its scripts, styles, icon)."""
    return [
        Route("/", _index, methods=["GET", "HEAD"]),
        Route("/favicon.ico", _favicon, methods=["GET", "HEAD"]),
        Mount("/static", app=_Assets(directory=WEB_DIR), name="static"),
    ]
