"""Writes sent by a web page of another site are refused (cross-site request forgery).

A page on any site can make its visitor's browser send a "simple" request to the tracker, one
sent without asking the server first: a form's POST, or ``fetch(url, {method: "POST", mode:
"no-cors", body})`` with a ``text/plain`` body, which the routes read as JSON like any other.
The page cannot read the answer, but what the request does is done: it registered accounts
from each visitor's address (spending the visitor's registration budget), and a key in the
URL (``?api_key=``) was enough to mint or revoke keys and add or delete webhooks. Without CORS
headers (the server sends none) no other cross-site write gets past the browser's preflight.

Browsers say where a request comes from: ``Sec-Fetch-Site`` (``same-origin``, ``same-site``,
``cross-site``, or ``none`` for what the user typed), sent by every current browser to https
and loopback addresses, and ``Origin`` on every cross-origin POST. A write (any method but
GET, HEAD, OPTIONS) is served when ``Sec-Fetch-Site`` is ``same-origin`` or ``none``; without
that header, when its ``Origin`` is absent or names the request's own ``Host`` (or an
``--allowed-host``). Programs (curl, the SDK, the CLI) send neither header and are served as
before. Another port of the same machine is the same site but not the same origin: refused.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from starlette.types import ASGIApp, Receive, Scope, Send

from purpleflea.server import http
from purpleflea.server.host_check import HostNames, host_name

#: Methods that only read: served whoever asks (a foreign page cannot read the answer).
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
#: ``Sec-Fetch-Site`` values of a request the page itself (or the user) made.
_OWN = frozenset({"same-origin", "none"})


def _header(scope: Scope, name: bytes) -> str | None:
    return next((v.decode("latin-1") for k, v in scope["headers"] if k == name), None)


def _authority(netloc: str) -> str:
    """``host[:port]`` as :func:`host_check.host_name` compares hosts, with the port kept."""
    host = host_name(netloc)
    port = netloc.rsplit(":", 1)[1] if netloc.count(":") == 1 or "]:" in netloc else ""
    # An IPv6 address keeps its brackets: [::1]:8000 is not the address ::1:8000.
    host = f"[{host}]" if ":" in host else host
    return f"{host}:{port}" if port else host


def own_origin(origin: str, host: str | None, names: HostNames) -> bool:
    """Whether an ``Origin`` header names the server the request was sent to: the request's
    own ``Host`` (same name and port), or a name the operator allowed by name (a proxy in
    front that passes another ``Host`` on; ``--allowed-host '*'`` is not one)."""
    parts = urlsplit(origin.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return False  # "null": a sandboxed frame, a data: URL, a file
    if host is not None and _authority(parts.netloc) == _authority(host):
        return True
    return names.operator_named(host_name(parts.netloc))


def cross_site_write(scope: Scope, names: HostNames) -> bool:
    """Whether ``scope`` is a write a browser sent on behalf of another site's page."""
    if scope["method"] in SAFE_METHODS:
        return False
    fetch_site = _header(scope, b"sec-fetch-site")
    if fetch_site is not None:
        return fetch_site.strip().lower() not in _OWN
    origin = _header(scope, b"origin")
    return origin is not None and not own_origin(origin, _header(scope, b"host"), names)


class SameOriginWrites:
    """Refuses, with 403 ``cross_site_request``, every write :func:`cross_site_write` finds."""

    def __init__(self, app: ASGIApp, names: HostNames) -> None:
        self.app = app
        self.names = names

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not cross_site_write(scope, self.names):
            await self.app(scope, receive, send)
            return
        response = http.error_response(
            403,
            "cross_site_request",
            f"{scope['method']} {scope['path'][:200]}: sent by a page of another site "
            "(Sec-Fetch-Site or Origin); changes are taken from this server's own page and "
            "from programs only (curl, the SDK)",
        )
        await response(scope, receive, send)
