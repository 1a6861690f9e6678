"""Event-id deduplication within a time window."""

from __future__ import annotations

import math
from collections import deque


class Deduper:
    """Remembers event ids for ``ttl`` seconds (at most ``max_size`` of them).

    Every event passes two of these (the connection's and the pipeline's), so the common
    case is kept to a float comparison and a plain dict: ids map to their expiry, and a
    deque holds (expiry, id) in arrival order for forgetting the oldest.
    """

    def __init__(self, ttl: float = 900.0, max_size: int = 200_000) -> None:
        self.ttl = ttl
        self.max_size = max_size
        self._expiry: dict[str, float] = {}
        self._order: deque[tuple[float, str]] = deque()
        # When the oldest id expires (inf: none held): most calls need not look at it.
        self._first_expiry = math.inf

    def __len__(self) -> int:
        """Ids held now (expired ones go at the next call past their expiry)."""
        return len(self._expiry)

    def seen(self, event_id: str, now: float) -> bool:
        """True if ``event_id`` was seen within the TTL; otherwise remember it."""
        expiry = self._expiry
        if now >= self._first_expiry or len(expiry) >= self.max_size:
            self._forget(now)
        if event_id in expiry:
            return True
        at = now + self.ttl
        expiry[event_id] = at
        self._order.append((at, event_id))
        if len(expiry) == 1:  # the only id held: the oldest
            self._first_expiry = at
        return False

    def _forget(self, now: float) -> None:
        """Drop the ids expired at ``now``, and the oldest ones beyond ``max_size - 1``."""
        expiry, order = self._expiry, self._order
        while order:
            at, oldest = order[0]
            if at > now and len(expiry) < self.max_size:
                self._first_expiry = at
                return
            order.popleft()
            del expiry[oldest]
        self._first_expiry = math.inf
