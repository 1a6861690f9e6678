"""How long a connection runner waits before connecting again."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

#: The longest ``Retry-After`` honoured, seconds: Binance's IP bans last "from 2 minutes to 3
#: days"; a day keeps a garbled date from parking a feed for years.
MAX_RETRY_AFTER = 24 * 3600.0
#: The statuses whose ``Retry-After`` is waited out in full (up to :data:`MAX_RETRY_AFTER`):
#: a rate limit (429) and Binance's IP ban (418), where each early handshake counts against us.
RATE_LIMITED = frozenset({418, 429})
#: The longest ``Retry-After`` honoured for any other refusal (a 503 in maintenance): an early
#: handshake there costs one refusal, not a ban, and a day's wait would be a day of lost data.
MAX_UNAVAILABLE_RETRY_AFTER = 600.0


@dataclass
class Backoff:
    """Exponential backoff with jitter: delay ~ U(c/2, c), c = min(cap, base * 2**attempt).

    Half the ceiling is kept as a floor so that a dead network never turns into a busy loop,
    while the random half spreads many connections' retries apart.
    """

    base: float = 0.5
    cap: float = 30.0
    #: A connection that lived this long is replaced without waiting, and resets the
    #: attempt count.
    healthy_after: float = 30.0
    rng: random.Random = field(default_factory=random.Random)

    def delay(self, attempt: int) -> float:
        ceiling: float = min(self.cap, self.base * 2 ** min(attempt, 30))
        return self.rng.uniform(ceiling / 2, ceiling)

    def delay_at_least(self, attempt: int, retry_after: float | None) -> float:
        """:meth:`delay`, but never shorter than the venue's ``Retry-After`` (plus up to
        ``base`` of jitter, so feeds told the same wait do not return together): a venue
        counts a handshake before that time against us (Binance turns 429 into a 418 IP
        ban). ``retry_after`` may exceed ``cap``; it is bounded by :data:`MAX_RETRY_AFTER`."""
        delay = self.delay(attempt)
        if retry_after is None:
            return delay
        wait = min(retry_after, MAX_RETRY_AFTER) + self.rng.uniform(0, self.base)
        return max(delay, wait)
