"""IP address facts shared by the webhook store (the per-host cap) and the delivery budget."""

from __future__ import annotations

import ipaddress

#: IPv6 ranges whose last 32 bits are an IPv4 address a packet to them reaches: IPv4-compatible
#: (deprecated, but routed by a host with a ``sit`` tunnel), IPv4-translated (SIIT) and the
#: well-known NAT64 prefix. A NAT64 gateway (IPv6-only cloud networks have one) takes
#: 64:ff9b::10.0.0.5 to 10.0.0.5.
_CARRY_IPV4 = tuple(
    ipaddress.IPv6Network(net) for net in ("::/96", "::ffff:0:0:0/96", "64:ff9b::/96")
)


def carried_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address a packet to ``ip`` reaches, when ``ip`` carries one: IPv4-mapped,
    6to4, IPv4-compatible, IPv4-translated (SIIT) or the well-known NAT64 prefix."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if any(ip in net for net in _CARRY_IPV4):
        return ipaddress.IPv4Address(int(ip) & 0xFFFF_FFFF)
    return None
