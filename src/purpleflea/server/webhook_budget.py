"""How fast webhooks may send to one destination, all accounts together: pure.

Accounts are free, so one person can own many, and each may aim its webhooks at any URL. Were
each webhook sent on its own, N accounts aiming 10 webhooks each at a third party's server
would make this server POST every liquidation 10 N times to it: a traffic amplifier (a
reflector) against someone who never signed up. :class:`DestinationBudget` bounds what all
webhooks together send to one destination, whoever owns them: ``rate`` deliveries a second and
``bytes_per_s`` bytes a second, with a burst of ``burst`` deliveries (and as many seconds'
worth of bytes) above the rate. A delivery over the budget waits its turn (first come, first
served: with one delivery in flight per webhook, the webhooks aimed at a destination take
turns); the dispatcher's bounded queue, behind it, sends the rest to the dead letters.

The destination is the address a delivery's connection goes to (:func:`destination_key`), not
the host name in its URL: names are free (a wildcard DNS record gives an attacker a million
names for the victim's one address), addresses are not. An IPv6 destination is its /64 (the
block one host or network gets, as registrations count it); an IPv6 address that carries an
IPv4 one (mapped, NAT64, 6to4) is that IPv4 address.

The budget is GCRA (the generic cell rate algorithm): per destination one "theoretical arrival
time" per measure, moved on by each delivery's cost; a delivery waits until that time is
within the burst tolerance of now. Reserving is one dict lookup and a few float operations.
"""

from __future__ import annotations

import ipaddress
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from purpleflea.addresses import carried_ipv4

#: Above this many destinations held, the ones whose budget is back to full are forgotten.
_PRUNE_ABOVE = 4_096


def destination_key(address: str) -> str:
    """The destination a connection to ``address`` (an IP, maybe with an IPv6 zone) counts
    against: an IPv4 address as itself, an IPv6 one as its /64, or as the IPv4 address it
    carries. Raises ValueError when ``address`` is not an IP address."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address):
        carried = carried_ipv4(ip)
        if carried is None:
            return str(ipaddress.IPv6Network((ip, 64), strict=False))
        ip = carried
    return str(ip)


@dataclass(frozen=True)
class BudgetLimits:
    """A destination's budget; 0 for ``rate`` or ``bytes_per_s`` leaves that measure free."""

    rate: float
    burst: int
    bytes_per_s: float

    def __post_init__(self) -> None:
        for name in ("rate", "bytes_per_s"):
            value = getattr(self, name)
            if not math.isfinite(value) or value < 0:
                raise ValueError(f"webhook destination {name} must be 0 or more, got {value!r}")
        if self.burst < 1:
            raise ValueError(f"webhook destination burst must be at least 1, got {self.burst}")

    @property
    def tolerance_s(self) -> float:
        """How far ahead of now a destination's budget may be spent without waiting: the
        burst's worth of deliveries at the rate (one second when the rate is free)."""
        return self.burst / self.rate if self.rate else 1.0


class DestinationBudget:
    """Deliveries and bytes per destination over all webhooks; see the module docstring."""

    def __init__(
        self, limits: BudgetLimits, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.limits = limits
        self._clock = clock
        # destination -> (theoretical arrival time of deliveries, of bytes), clock seconds
        self._due: dict[str, tuple[float, float]] = {}

    @property
    def enabled(self) -> bool:
        return bool(self.limits.rate or self.limits.bytes_per_s)

    def _advance(self, key: str, size: int, now: float) -> tuple[float, float]:
        limits = self.limits
        count_due, bytes_due = self._due.get(key, (now, now))
        count_due = max(count_due, now) + (1.0 / limits.rate if limits.rate else 0.0)
        bytes_due = max(bytes_due, now) + (size / limits.bytes_per_s if limits.bytes_per_s else 0.0)
        return count_due, bytes_due

    def wait(self, key: str, size: int) -> float:
        """Seconds a delivery of ``size`` bytes to ``key`` would wait now (reserves nothing)."""
        now = self._clock()
        return max(0.0, max(self._advance(key, size, now)) - now - self.limits.tolerance_s)

    def reserve(self, key: str, size: int) -> float:
        """Spend one delivery of ``size`` bytes from ``key``'s budget; the seconds to wait
        before sending it (0: at once). Later reservations queue behind this one."""
        if not self.enabled:
            return 0.0
        now = self._clock()
        due = self._advance(key, size, now)
        self._due[key] = due
        if len(self._due) > _PRUNE_ABOVE:
            self._prune(now)
        return max(0.0, max(due) - now - self.limits.tolerance_s)

    def charge(self, key: str, size: int) -> None:
        """Spend a delivery that went to ``key`` without reserving there first (its
        connection turned out to reach another address than expected): whoever sends to
        ``key`` next waits for it."""
        self.reserve(key, size)

    def _prune(self, now: float) -> None:
        # A destination whose due times are behind now is as if never seen.
        self._due = {key: due for key, due in self._due.items() if max(due) > now}

    def throttled(self) -> int:
        """Destinations sending beyond their burst now (deliveries to them wait)."""
        now = self._clock()
        edge = now + self.limits.tolerance_s
        return sum(1 for due in self._due.values() if max(due) > edge)
