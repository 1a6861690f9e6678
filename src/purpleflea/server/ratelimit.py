"""Request rate limits: a token bucket per name (an account, a client address)."""

from __future__ import annotations

import asyncio
import ipaddress
import math
import time
from collections.abc import Callable

#: Names tracked before refilled buckets are dropped.
_MAX_BUCKETS = 100_000


class RateLimiter:
    """``rate`` requests per second sustained, bursts up to ``burst``.

    :meth:`acquire` returns 0 when the request may proceed, else the seconds to wait
    (the ``Retry-After``).
    """

    def __init__(
        self, rate: float, burst: float, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError(f"rate must be > 0 and burst >= 1 (got {rate}, {burst})")
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}

    def acquire(self, key: str) -> float:
        now = self._clock()
        if len(self._buckets) >= _MAX_BUCKETS:
            self._forget_full(now)
        tokens, at = self._buckets.get(key, (self.burst, now))
        tokens = min(self.burst, tokens + (now - at) * self.rate)
        if tokens >= 1:
            self._buckets[key] = (tokens - 1, now)
            return 0.0
        self._buckets[key] = (tokens, now)
        return (1 - tokens) / self.rate

    async def take(self, key: str) -> None:
        """Wait until ``key`` may make one more request, then count it (what :meth:`acquire`
        refuses, this waits for: the pace of work that is slowed rather than refused)."""
        while (wait := self.acquire(key)) > 0:
            await asyncio.sleep(wait)

    def charge(self, key: str, tokens: float) -> None:
        """Take ``tokens`` more from ``key``'s bucket, below zero if need be: a debt that
        the refill pays back before :meth:`acquire` lets the next request through."""
        if tokens <= 0:
            return
        now = self._clock()
        have, at = self._buckets.get(key, (self.burst, now))
        self._buckets[key] = (min(self.burst, have + (now - at) * self.rate) - tokens, now)

    def _forget_full(self, now: float) -> None:
        """Drop buckets that have refilled (forgetting them changes nothing), so a flood of
        distinct names cannot grow the table without bound. One in debt is kept until paid."""
        self._buckets = {
            name: (tokens, at)
            for name, (tokens, at) in self._buckets.items()
            if now - at < (self.burst - tokens) / self.rate
        }

    @staticmethod
    def retry_after_header(wait: float) -> str:
        return str(max(1, math.ceil(wait)))

    @staticmethod
    def wait_text(wait: float) -> str:
        """``wait`` seconds as a message says it: rounded up to a tenth, at least 0.1 s (a
        wait of 0.02 s read "retry after 0.0 s", or "0.02 s", a figure to read past)."""
        tenths = max(1, math.ceil(round(wait * 10, 6)))  # 0.3 * 10 is 3.0000000000000004
        return f"{tenths / 10:g} s"


def client_network(address: str) -> str:
    """The name a per-address limit counts a client under: an IPv6 address by its /64 (what
    one customer, one server, one home network is given), an IPv4-mapped IPv6 address as its
    IPv4 address, anything else as given. Counted per IPv6 address, one rented server held
    2**64 budgets."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address  # not an address ("unknown", a Unix socket's path)
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


#: How many times one address's registration budget the /64s of one IPv6 /48 share.
SITE_SHARE = 10


def client_site(address: str) -> str | None:
    """The IPv6 /48 a client's address belongs to (one site: what a tunnel broker or a
    provider gives a customer, 65,536 /64s), None for IPv4 and IPv4-mapped addresses and
    for what is not an address. Counted per /64 only, one free /48 held 65,536 budgets."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return None
    if not isinstance(ip, ipaddress.IPv6Address) or ip.ipv4_mapped is not None:
        return None
    return str(ipaddress.IPv6Network((ip, 48), strict=False))
