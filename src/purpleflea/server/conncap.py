"""Connections open at once per client address, refused past a cap before any HTTP is read.

The header deadline (:data:`purpleflea.server.serving.HEADER_TIMEOUT_S`) closes connections
that send nothing, but one address opening ~2,000 a second still held ~20,000 at any moment,
the server's every file descriptor. Counted here per address as the registration limit counts
(:func:`purpleflea.server.ratelimit.client_network`: an IPv6 client by its /64), one address
holds at most ``per_address`` connections: REST keep-alive, SSE and WebSocket alike (the slot
moves with a connection upgraded to a WebSocket and is freed when the connection closes).

Refusal happens when the connection is accepted, from the TCP peer address alone: a fixed
503 is written and the connection closed, nothing is parsed. A peer that is one of the
operator's trusted proxies is not counted (its connections carry many clients, whose
addresses are only known from headers; cap them at the proxy). Loopback is counted like any
address: the dashboard and a local client need a handful of connections, well under the cap.
"""

from __future__ import annotations

import ipaddress

from purpleflea.server.ratelimit import client_network

#: Connections one address may hold open at once by default: a browser uses up to 6 per
#: server plus its streams, and an account may hold 20 streams, so an office behind one NAT
#: address fits several busy users; 20,000 descriptors then take ~80 addresses, not one.
DEFAULT_PER_ADDRESS = 256

#: What a refused client reads (if its TCP stack delivers it before the close): the API's
#: error shape, written in one piece without looking at what the client sent.
_BODY = (
    b'{"error":{"code":"too_many_connections","message":"too many connections open from '
    b'this address; close some and retry"}}'
)
REFUSAL = (
    b"HTTP/1.1 503 Service Unavailable\r\n"
    b"content-type: application/json\r\n"
    b"retry-after: 1\r\n"
    b"connection: close\r\n"
    b"content-length: " + str(len(_BODY)).encode() + b"\r\n\r\n" + _BODY
)


class ConnectionCap:
    """Counts open connections per client network and refuses one past ``per_address``
    (0: no cap). :meth:`admit` returns the name the connection is counted under (to hand to
    :meth:`release` exactly once when it closes), ``""`` when it is not counted, or None
    when it is refused."""

    def __init__(self, per_address: int, *, exempt: tuple[str, ...] = ()) -> None:
        if per_address < 0:
            raise ValueError(
                f"connections per address must be 0 (no cap) or more, got {per_address}"
            )
        self.per_address = per_address
        self._exempt = tuple(ipaddress.ip_network(net, strict=False) for net in exempt)
        self._open: dict[str, int] = {}
        self.refused = 0

    def admit(self, peer: object) -> str | None:
        """``peer``: the transport's ``peername`` (``(host, port, ...)`` for TCP)."""
        if self.per_address == 0 or not isinstance(peer, tuple) or not peer:
            return ""
        host = str(peer[0])
        if self._exempt and self._is_exempt(host):
            return ""
        name = client_network(host)
        held = self._open.get(name, 0)
        if held >= self.per_address:
            self.refused += 1
            return None
        self._open[name] = held + 1
        return name

    def release(self, name: str) -> None:
        if not name:
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
