"""A server answers only requests addressed to it by a name it knows (DNS rebinding).

A web page the user opens can reach a server the user's browser reaches: the page's own name
is made to resolve to the tracker's address (DNS rebinding), and the browser then treats the
tracker as the page's origin. The cross-site check (``server.cross_site``) does not see it:
``Origin`` and ``Host`` are both the page's name. The page can register accounts from its
visitor's address (spending the visitor's registration budget), read streams, and use a key
it finds in a URL; on a loopback bind, where webhooks to private addresses are allowed
(``webhook_policy``), create a webhook that makes the tracker POST to the user's router or a
local database. What gives such a request away is its ``Host`` header, the page's name. So:

- a server bound to loopback answers only ``localhost`` names and loopback addresses;
- a server bound to another address (``0.0.0.0``, ``::``, a LAN address) answers those, any IP
  address (a rebinding page cannot make the browser send an IP address as the ``Host`` of its
  own name), this machine's names (``socket.gethostname()``, ``socket.getfqdn()``) and the
  name it was bound by;
- both answer the names the operator gives with ``--allowed-host`` (``NAME``; ``.NAME``: the
  name and its subdomains; ``*.NAME``: its subdomains; ``*``: any name, the explicit opt-out).

Others get 421 ``misdirected`` naming the ``Host`` received and the flag; a WebSocket is
refused before it opens (the same 421 where the server can answer a WebSocket handshake with
an HTTP response). Each refused name is logged once, and every refusal is counted as
``purpleflea_http_client_errors_total{kind="misdirected"}``.
"""

from __future__ import annotations

import encodings.idna
import ipaddress
import logging
import math
import socket
import time
from collections.abc import Iterable, MutableMapping

from starlette.types import ASGIApp, Receive, Scope, Send

from purpleflea.server import http

log = logging.getLogger("purpleflea.server")

#: Distinct refused names logged one line each; past them, one line a minute says how many.
LOGGED_NAMES = 100
UNLOGGED_LINE_S = 60.0
#: ``Host`` headers whose answer :class:`HostNames` remembers.
REMEMBERED_HOSTS = 1024


def loopback_bind(host: str) -> bool:
    """Whether a server bound to ``host`` can be reached from this machine alone."""
    name = _canonical(host.strip().strip("[]"))
    return name == "localhost" or _loopback_address(name)


def _address(name: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(name)
    except ValueError:
        return None  # a name, not an address


def _loopback_address(name: str) -> bool:
    address = _address(name)
    return address is not None and address.is_loopback


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


def address_literal(host_header: str) -> bool:
    """Whether a ``Host`` header gives an IP address (v4, or v6 in brackets), not a name."""
    return _address(host_name(host_header)) is not None


def _ascii_name(name: str) -> str:
    """``name`` as browsers put it in ``Host``: each label with other than ASCII letters in
    its IDNA form (``bücher.example``: ``xn--bcher-kva.example``). UnicodeError for a label
    that has none."""
    return ".".join(
        label if label.isascii() else encodings.idna.ToASCII(label).decode("ascii")
        for label in name.split(".")
    )


def check_allowed_host(value: str) -> str:
    """``value`` if it is what ``--allowed-host`` takes, else ValueError naming it."""
    if value.strip() == "*":
        return value
    name = host_name(value)
    pattern = name.removeprefix("*.") if name.startswith("*.") else name.removeprefix(".")
    try:
        _ascii_name(pattern)
        spelled = True
    except UnicodeError:  # a label too long, or no IDNA form
        spelled = False
    if (
        not pattern
        or not spelled
        or any(c in pattern for c in "*/@?# \\")
        or "/" in value
        or pattern.startswith(".")
        or ".." in pattern
    ):
        raise ValueError(
            f"allowed host {value!r} is not a host name: give NAME (tracker.example.com), "
            ".NAME (the name and its subdomains), *.NAME (its subdomains) or '*' (any name)"
        )
    return value


def machine_names(bind: str) -> frozenset[str]:
    """This machine's own names (the host name and its fully qualified form) and the name
    ``bind`` gives when it is a name: what users on the network type to reach it. Looked up
    once, at startup (``getfqdn`` may ask DNS)."""
    names = {socket.gethostname(), socket.getfqdn()}
    if bind.strip() and _address(bind.strip().strip("[]")) is None:
        names.add(bind)
    return frozenset(n for n in (host_name(name) for name in names) if n)


def allow_flag(name: str) -> str:
    """``--allowed-host 'name'``, what answers requests addressed to ``name``; the flag with
    ``NAME`` when ``name`` is none it takes as a name (an empty ``Host``, ``*``, a pattern):
    told as such, the flag refused the server's start, or answered every name."""
    try:
        check_allowed_host(name)
    except ValueError:
        return "--allowed-host NAME"
    if "*" in name or name.startswith("."):
        return "--allowed-host NAME"
    return f"--allowed-host {name!r}"


class HostNames:
    """The ``Host`` names a server bound to ``bind`` answers. ``allowed``: the operator's
    ``--allowed-host`` values; ``machine``: :func:`machine_names` (non-loopback binds)."""

    def __init__(self, bind: str, allowed: Iterable[str] = (), machine: Iterable[str] = ()) -> None:
        self.loopback = loopback_bind(bind)
        # A name in another script as browsers send it (its IDNA form), never matched as given.
        names = [_ascii_name(host_name(check_allowed_host(name))) for name in allowed]
        #: ``--allowed-host '*'``: every name is answered.
        self.any = any(name.strip() == "*" for name in allowed)
        #: Names answered as given; ``.NAME`` names NAME itself too.
        self.exact = frozenset(n.removeprefix(".") for n in names if not n.startswith("*"))
        #: What a subdomain's name ends with (``.NAME`` and ``*.NAME``: ``.NAME``).
        self.suffixes = tuple(n.removeprefix("*") for n in names if n[:1] in ".*" and n != "*")
        self.machine = frozenset() if self.loopback else frozenset(machine)
        self._answered: dict[str, bool] = {}

    def operator_named(self, name: str) -> bool:
        """Whether ``name`` (as :func:`host_name` gives it) is one the operator allowed by
        name: a proxy's public name, or the names clients use (not the ``*`` opt-out)."""
        return name in self.exact or name.endswith(self.suffixes)

    def answers(self, host_header: str) -> bool:
        """Whether a request whose ``Host`` is ``host_header`` is answered. Remembered for
        the last :data:`REMEMBERED_HOSTS` distinct headers: clients send the same few, and
        working one out costs 5-10 us of CPU (parsing it as an address), 2-5% of a small
        request's."""
        known = self._answered.get(host_header)
        if known is not None:
            return known
        answered = self._answers(host_header)
        if len(self._answered) >= REMEMBERED_HOSTS:
            self._answered.clear()  # many names: each is worked out again, bounded memory
        self._answered[host_header] = answered
        return answered

    def _answers(self, host_header: str) -> bool:
        if self.any or loopback_name(host_header):
            return True
        name = host_name(host_header)
        if self.operator_named(name):
            return True
        return not self.loopback and (address_literal(host_header) or name in self.machine)

    def refusal(self, host_header: str) -> str:
        """What a refused request is told: the ``Host`` it sent, and the flag."""
        shown = host_header[:100]
        name = host_name(shown)
        if self.loopback:
            return (
                f"this server listens on loopback and answers requests addressed to it only "
                f"(Host {shown!r} is not): open it as http://127.0.0.1 or http://localhost; "
                "behind a reverse proxy on this machine, name the proxy's public host with "
                f"{allow_flag(name)}"
            )
        return (
            f"this server answers requests addressed to it by an IP address, localhost or "
            f"its machine's name (Host {shown!r} is none of them; refused against DNS "
            f"rebinding): open it by its address, or have it started with {allow_flag(name)} "
            "if clients reach it by that name"
        )


class AddressedHostOnly:
    """Refuses HTTP requests (Server-Sent Events included) and WebSockets whose ``Host`` the
    server does not answer (:class:`HostNames`), counting each in ``counts["misdirected"]``
    (the server's ``http_client_errors_total``) and logging each refused name once."""

    def __init__(
        self,
        app: ASGIApp,
        names: HostNames,
        counts: MutableMapping[str, int] | None = None,
    ) -> None:
        self.app = app
        self.names = names
        self.counts: MutableMapping[str, int] = {} if counts is None else counts
        self.counts.setdefault("misdirected", 0)
        self._logged: set[str] = set()
        self._unlogged = 0
        self._unlogged_line_at = -math.inf

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        host = next((v.decode("latin-1") for k, v in scope["headers"] if k == b"host"), None)
        # HTTP/1.0 without Host: no browser sends it.
        if host is None or self.names.answers(host):
            await self.app(scope, receive, send)
            return
        self.counts["misdirected"] = self.counts.get("misdirected", 0) + 1
        self._log(host)
        if scope["type"] == "websocket" and "websocket.http.response" not in scope.get(
            "extensions", {}
        ):
            await send({"type": "websocket.close", "code": 4421, "reason": "misdirected"})
            return
        # A WebSocket's handshake is answered with this response (Starlette sends it as the
        # ASGI denial response): the client sees 421 and why, before the socket opens.
        response = http.error_response(421, "misdirected", self.names.refusal(host))
        await response(scope, receive, send)

    def _log(self, host: str) -> None:
        name = host_name(host[:100])
        if name in self._logged:
            return
        if len(self._logged) < LOGGED_NAMES:
            self._logged.add(name)
            log.warning(
                "refused requests addressed to %r (421 misdirected, counted in /v1/metrics "
                "as purpleflea_http_client_errors_total); if clients reach this server by "
                "that name, start it with %s (logged once per name)",
                name,
                allow_flag(name),
            )
            return
        self._unlogged += 1
        now = time.monotonic()
        if now - self._unlogged_line_at >= UNLOGGED_LINE_S:
            count, self._unlogged, self._unlogged_line_at = self._unlogged, 0, now
            log.warning(
                "refused %d more request(s) addressed to names past the %d logged one by one "
                "(421 misdirected; --allowed-host names the ones to answer; at most one such "
                "line a minute)",
                count,
                LOGGED_NAMES,
            )
