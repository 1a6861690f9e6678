"""How long a connection runner waits before connecting again."""

from __future__ import annotations

import random
from dataclasses import dataclass, field


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
