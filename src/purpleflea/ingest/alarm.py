"""Which connection failures are logged loudly: one WARNING per exchange per outage."""

from __future__ import annotations


class Alarm:
    """Decides which connection failures deserve a WARNING: one per exchange per outage.

    Several connections of one exchange (Bybit linear and inverse, Gate's two settles) share
    one alarm, so a network outage logs one clear line per exchange, not one per connection
    and retry. The alarm re-arms once every connection that failed has recovered: the runner
    says so when a connection has served (data, or frames past the backoff's healthy period),
    not when it merely connected, so a venue that accepts and drops us is one outage.
    """

    def __init__(self) -> None:
        self._failing: set[str] = set()

    def failed(self, connection: str) -> bool:
        """Record a failure; True if it is the first of an outage (log it loudly)."""
        first = not self._failing
        self._failing.add(connection)
        return first

    def recovered(self, connection: str) -> None:
        self._failing.discard(connection)
