"""Topics placed on connections that each hold a bounded amount of subscriptions.

Some venues cap what one connection may subscribe: dYdX's indexer refuses a 33rd
``v4_trades`` market on a connection; Bybit's public connections take at most 21,000
characters of ``args``. A venue lists new contracts at any time, while a connection, once
subscribed, keeps its topics. A :class:`Placement` spreads the topics known when the feeds are
built over as few connections as leave ``spare`` room, then places each topic listed later
on the connection with the most room that can take it, and on a connection of its own when
none can: the venue's spec opens it (``Connection.more``), so no listed topic waits for a
restart. A topic never moves to another connection once placed. Pure: no sockets, no clock.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence


def unit(topic: str) -> float:
    """Every topic costs one place (a count limit)."""
    del topic
    return 1.0


class Placement:
    """Which connection (by index) subscribes which topic, within ``capacity`` each.

    ``cost`` is what one topic takes of a connection's ``capacity`` (one place; or its
    characters). The groups built from ``built`` are contiguous and of even cost, as few as
    leave ``spare`` of room over all of them; one group at least.
    """

    def __init__(
        self,
        built: Sequence[str],
        capacity: float,
        *,
        cost: Callable[[str], float] = unit,
        spare: float = 0.0,
    ) -> None:
        self.capacity = capacity
        self.cost = cost
        self.groups: list[list[str]] = _split(built, capacity, cost, spare)
        #: How many connections the build made: the ones past them were opened for topics
        #: listed later.
        self.built = len(self.groups)
        self._used = [sum(cost(topic) for topic in group) for group in self.groups]
        self._placed = set(built)

    def place(self, listed: Iterable[str]) -> None:
        """Each topic of ``listed`` not placed yet goes to the connection with the most room,
        if the topic fits there, else to a new connection (at the end)."""
        for topic in listed:
            if topic in self._placed:
                continue
            self._placed.add(topic)
            cost = self.cost(topic)
            room = [self.capacity - used for used in self._used]
            most = max(range(len(room)), key=room.__getitem__)
            if room[most] >= cost:
                self.groups[most].append(topic)
                self._used[most] += cost
            else:
                self.groups.append([topic])
                self._used.append(cost)

    def used(self, index: int) -> float:
        """What connection ``index``'s topics take of its capacity (all it was ever given:
        the venue counts a topic subscribed until the socket closes)."""
        return self._used[index]


def _split(
    topics: Sequence[str], capacity: float, cost: Callable[[str], float], spare: float
) -> list[list[str]]:
    costs = [cost(topic) for topic in topics]
    total = sum(costs)
    count = max(1, math.ceil((total + spare) / capacity))
    while True:
        groups: list[list[str]] = [[] for _ in range(count)]
        used = 0.0
        for topic, each in zip(topics, costs, strict=True):
            groups[min(count - 1, int(used * count // total)) if total else 0].append(topic)
            used += each
        if all(sum(cost(t) for t in group) <= capacity for group in groups):
            return groups
        count += 1  # uneven costs overfilled a group: one more evens them out
