"""Connections open at once per client address, refused past a cap before any HTTP is read.

The header deadline (:data:`purpleflea.server.serving.HEADER_TIMEOUT_S`) closes connections
that send nothing, but one address opening ~2,000 a second still held ~20,000 at any moment,
the server's every file descriptor. Counted here per address as the registration limit counts
(:func:`purpleflea.server.ratelimit.client_network`: an IPv6 client by its /64), one address
holds at most ``per_address`` connections: REST keep-alive, SSE and WebSocket alike (the slot
moves with a connection upgraded to a WebSocket and is freed when the connection closes).

Refusal happens when the connection is accepted, from the TCP peer address alone: a fixed
503 is written and the connection half-closed, nothing is parsed (what the client sends is
read and dropped for up to a second, so its request does not turn the close into a reset
that loses the 503: ``serving.REFUSAL_LINGER_S``). A peer that is one of the
operator's trusted proxies is not counted (its connections carry many clients, whose
addresses are only known from headers; cap them at the proxy). Loopback is counted like any
address: the dashboard and a local client need a handful of connections, well under the cap.

The per-address cap alone left the process's descriptors to many addresses (127.0.1.x, an
IPv6 attacker's /64s): a server with RLIMIT_NOFILE 256 held ~228 client connections from
two to four per address, then accepted nothing more (new clients waited unanswered), its
venue connection could not reconnect, its simulator could not save its state, and asyncio
logged 86,017 "Too many open files" lines in 40 s (bench/fd_exhaust.py). All connections
together (trusted proxies' too: their descriptors are as real) are capped at
:func:`process_cap`, RLIMIT_NOFILE less a reserve for the server's own (store, venues,
workers, webhooks, logs), refused the same way with their own code and counter.
"""

from __future__ import annotations

import ipaddress
import math
import resource

from purpleflea.server.ratelimit import client_network

#: Connections one address may hold open at once by default: a browser uses up to 6 per
#: server plus its streams, and an account may hold 20 streams, so an office behind one NAT
#: address fits several busy users; 20,000 descriptors then take ~80 addresses, not one.
DEFAULT_PER_ADDRESS = 256

#: Descriptors the process keeps for itself beyond client connections, at least: the store
#: (SQLite's writer and readers, each with its WAL; a PostgreSQL pool), ~40 venue
#: connections and pollers, the position samplers, webhook deliveries, stream workers'
#: socket pairs, the bus, log files, the listening socket and the event loop's own.
RESERVED_MIN = 128
#: ... and at least this share of RLIMIT_NOFILE (a large limit serves many clients, whose
#: streams' webhooks and workers grow with them).
RESERVED_SHARE = 0.1


def process_cap(soft_limit: int | None = None) -> int:
    """Connections the whole process may hold open at once: RLIMIT_NOFILE's soft limit (or
    ``soft_limit``) less a reserve of :data:`RESERVED_SHARE` of it, at least
    :data:`RESERVED_MIN` descriptors; never under 16 (a limit that small serves a test)."""
    if soft_limit is None:
        soft_limit = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
        if soft_limit == resource.RLIM_INFINITY:
            soft_limit = 1 << 20
    reserve = max(RESERVED_MIN, int(soft_limit * RESERVED_SHARE))
    return max(16, soft_limit - reserve)


def _refusal(code: str, message: str) -> bytes:
    """What a refused client reads before the server's half-close: the API's
    error shape, written in one piece without looking at what the client sent."""
    body = f'{{"error":{{"code":"{code}","message":"{message}"}}}}'.encode()
    return (
        b"HTTP/1.1 503 Service Unavailable\r\n"
        b"content-type: application/json\r\n"
        b"retry-after: 1\r\n"
        b"connection: close\r\n"
        b"content-length: " + str(len(body)).encode() + b"\r\n\r\n" + body
    )


#: Past the per-address cap.
REFUSAL = _refusal(
    "too_many_connections", "too many connections open from this address; close some and retry"
)
#: Past the process-wide cap.
REFUSAL_FULL = _refusal(
    "server_full", "the server holds all the connections it can; retry in a moment"
)
#: The slot of a connection counted in the process-wide cap alone (a trusted proxy's).
_UNNAMED = "*"


class ConnectionCap:
    """Counts open connections per client network and in all, and refuses one past
    ``per_address`` of its network or past ``total`` in all (0: no such cap).
    :meth:`admit` returns the slot the connection is counted under (to hand to
    :meth:`release` exactly once when it closes; ``""`` when it is not counted at all), or,
    when it is refused, the bytes of the 503 to write before closing it."""

    def __init__(self, per_address: int, *, total: int = 0, exempt: tuple[str, ...] = ()) -> None:
        if per_address < 0 or total < 0:
            raise ValueError(
                f"connections per address ({per_address}) and in all ({total}) must be 0 "
                "(no cap) or more"
            )
        self.per_address = per_address
        self.total = total
        self._exempt = tuple(ipaddress.ip_network(net, strict=False) for net in exempt)
        self._open: dict[str, int] = {}
        #: Connections counted in all (``total``), trusted proxies' included.
        self.open = 0
        #: Refused connections kept half-open to read their request (``serving``).
        self.lingering = 0
        self.refused = 0
        self.refused_full = 0
        #: Connections aborted because their client took nothing of an answer for
        #: ``serving.DRAIN_TIMEOUT_S`` (counted here, where connections are).
        self.stalled = 0
        #: WebSockets cut for sending frames past ``streaming.MAX_FRAMES_PER_S`` or a message
        #: in more than ``streaming.MAX_FRAGMENTS`` parts (``serving``).
        self.flooded = 0
        #: Requests the HTTP layer answered without the application, by what was wrong with
        #: them (``serving.CLIENT_NOISE``), and requests refused for their ``Host``
        #: (``host_check``, "misdirected"): counted here instead of a log line each.
        self.client_errors: dict[str, int] = dict.fromkeys(
            ("invalid_request", "unsupported_upgrade", "headers_too_many", "misdirected"), 0
        )
        #: When one of them was last logged (``time.monotonic()``), and how many since.
        self.noise_logged_at = -math.inf
        self.noise_unlogged = 0

    def admit(self, peer: object) -> str | bytes:
        """``peer``: the transport's ``peername`` (``(host, port, ...)`` for TCP)."""
        if self.total:
            if self.open >= self.total:
                self.refused_full += 1
                return REFUSAL_FULL
        elif self.per_address == 0:
            return ""
        name = self._name(peer)
        if name:
            held = self._open.get(name, 0)
            if held >= self.per_address:
                self.refused += 1
                return REFUSAL
            self._open[name] = held + 1
        self.open += 1
        return name or _UNNAMED

    def _name(self, peer: object) -> str:
        """The network ``peer`` is counted under for the per-address cap, "" for none."""
        if self.per_address == 0 or not isinstance(peer, tuple) or not peer:
            return ""
        host = str(peer[0])
        if self._exempt and self._is_exempt(host):
            return ""
        return client_network(host)

    def release(self, name: str) -> None:
        if not name:
            return
        self.open -= 1
        if name == _UNNAMED:
            return
        held = self._open.get(name, 0) - 1
        if held > 0:
            self._open[name] = held
        else:
            self._open.pop(name, None)  # the table holds only addresses with connections

    def held(self, address: str) -> int:
        """Connections counted for ``address``'s network now."""
        return self._open.get(client_network(address), 0)

    def _is_exempt(self, host: str) -> bool:
        try:
            ip = ipaddress.ip_address(host)
        except ValueError:
            return False
        return any(ip in net for net in self._exempt)

    def metrics(self) -> list[tuple[str, str, str, list[tuple[str, float]]]]:
        """``/v1/metrics`` families (see :data:`purpleflea.server.api.MetricSource`)."""
        return [
            (
                "connections_refused_total",
                "counter",
                "Connections closed on accept because their address already held "
                "--connections-per-address.",
                [("", float(self.refused))],
            ),
            (
                "connections_refused_full_total",
                "counter",
                "Connections closed on accept because the server held --max-connections.",
                [("", float(self.refused_full))],
            ),
            (
                "connections_stalled_total",
                "counter",
                "Connections aborted because their client took nothing of a REST answer for 20 s.",
                [("", float(self.stalled))],
            ),
            (
                "websocket_frame_floods_total",
                "counter",
                "WebSockets closed (flood, 4429) for more than 100 frames a second (pings "
                "included) or a message in more than 64 parts.",
                [("", float(self.flooded))],
            ),
            (
                "http_client_errors_total",
                "counter",
                "Requests the HTTP layer answered itself, by kind: invalid_request (not HTTP/1.1, "
                "answered 400 and closed), unsupported_upgrade (an Upgrade other than "
                "WebSocket, such as h2c, served as plain HTTP/1.1), headers_too_many (a head of "
                "over 100 lines, answered 431 and closed), misdirected (a Host the server does "
                "not answer, 421: see --allowed-host). Logged at most once a minute (misdirected: "
                "once per name).",
                [
                    (f'{{kind="{kind}"}}', float(n))
                    for kind, n in sorted(self.client_errors.items())
                ],
            ),
            (
                "connections_open",
                "gauge",
                "Client connections open (trusted proxies' included), against --max-connections.",
                [("", float(self.open))],
            ),
            (
                "connections_max",
                "gauge",
                "--max-connections: client connections the server holds at most (0: no cap).",
                [("", float(self.total))],
            ),
            (
                "connections_counted",
                "gauge",
                "Open connections counted against the per-address cap (trusted proxies' are not).",
                [("", float(sum(self._open.values())))],
            ),
            (
                "connection_addresses",
                "gauge",
                "Client addresses (IPv6: /64 networks) with a connection open.",
                [("", float(len(self._open)))],
            ),
        ]
