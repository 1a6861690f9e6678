"""A server on loopback answers only requests addressed to loopback (DNS rebinding).

A server bound to 127.0.0.1 is meant for this machine alone, and with that bind it allows
webhooks to private addresses (``webhook_policy``). A web page the user opens can still reach
it: the page's own name is made to resolve to 127.0.0.1 (DNS rebinding), and the browser then
treats the tracker as the page's origin: it can register an account, read the key it gets,
and create a webhook that makes the tracker POST to the user's router or a local database.
What gives such a request away is its ``Host`` header, the page's name: on a loopback bind,
only ``localhost`` names and loopback addresses are answered (421 otherwise, the WebSocket
refused before it opens). A server bound to another address serves whatever names reach it.
"""

from __future__ import annotations

import ipaddress

from starlette.types import ASGIApp, Receive, Scope, Send

from purpleflea.server import http


def loopback_bind(host: str) -> bool:
    """Whether a server bound to ``host`` can be reached from this machine alone."""
    name = _canonical(host.strip().strip("[]"))
    return name == "localhost" or _loopback_address(name)


def _loopback_address(name: str) -> bool:
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False  # a name, not an address


def _canonical(name: str) -> str:
    """A host name as DNS compares it: case does not matter, and the fully qualified form
    (``localhost.``, one trailing dot) names the same host."""
    name = name.lower()
    return name[:-1] if name.endswith(".") and not name.endswith("..") else name


def host_name(host_header: str) -> str:
    """The name (or address) a ``Host`` header gives, without its port, as DNS compares it."""
    name = host_header.strip()
    if name.startswith("["):  # [::1]:8000
        name = name[1 : name.find("]")] if "]" in name else name
    elif name.count(":") == 1:
        name = name.split(":", 1)[0]
    return _canonical(name)


def loopback_name(host_header: str) -> bool:
    """Whether a ``Host`` header (name or address, with or without a port) is loopback."""
    name = host_name(host_header)
    # RFC 6761: localhost and its subdomains are always loopback.
    return name == "localhost" or name.endswith(".localhost") or _loopback_address(name)


class LoopbackHostOnly:
    """Refuses HTTP requests and WebSockets whose ``Host`` is not a loopback name or one of
    ``allowed`` (the operator's ``--allowed-host``: a reverse proxy on this machine that passes
    its public name on)."""

    def __init__(self, app: ASGIApp, allowed: tuple[str, ...] = ()) -> None:
        self.app = app
        self.allowed = frozenset(host_name(name) for name in allowed)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        host = next((v.decode("latin-1") for k, v in scope["headers"] if k == b"host"), None)
        # HTTP/1.0 without Host: no browser sends it.
        if host is None or loopback_name(host) or host_name(host) in self.allowed:
            await self.app(scope, receive, send)
            return
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 4421, "reason": "misdirected"})
            return
        response = http.error_response(
            421,
            "misdirected",
            f"this server listens on loopback and answers requests addressed to it only "
            f"(Host {host[:100]!r} is not): open it as http://127.0.0.1 or http://localhost; "
            "behind a reverse proxy on this machine, name the proxy's public host with "
            "--allowed-host",
        )
        await response(scope, receive, send)
