"""Event-id deduplication within a time window."""

from __future__ import annotations

import math
from collections import deque

#: An id is held as the low 60 bits of its ``hash()`` (Python's keyed SipHash of the string):
#: a 2-digit int, 32 bytes whatever the id's length, where the string itself is 75 bytes
#: (simulator) to 190 (an id spelling a fill hash and an address). 60 bits, not 64: a 64-bit value
#: takes a third digit (40 bytes). Two distinct ids share a key with probability 2**-60, so a
#: new id is taken for a repeat of one of the n held with probability at most n / 2**60:
#: 4.3e-13 at the sequencer's 500,000 cap; a window kept full by 500,000 new ids an hour
#: drops a real event by this about once in 500 years. Such a drop is counted as a duplicate
#: (the sequencer's ``duplicates``, per exchange; a connection's ``duplicates``).
#: The hash's key is random per process: fine because a window lives in one process's memory
#: only (never stored or shared; a restarted or standby node starts with an empty one).
_KEY_MASK = (1 << 60) - 1


class Deduper:
    """Remembers event ids for ``ttl`` seconds (at most ``max_size`` of them).

    Every event passes two of these (the connection's and the pipeline's), so the common
    case is kept to a float comparison, a hash and a set. Memory is ~74 bytes an id whatever
    its length (bench/results/soak.md): a set of fixed-size keys, a deque of the same keys in
    arrival order, and the expiries as runs (one expiry and a count for consecutive ids seen
    at the same ``now``: the sequencer's whole batch) instead of an (expiry, id) tuple and a
    float per id (~194 bytes a simulator id, ~309 a 141-character one, before).
    """

    def __init__(self, ttl: float = 900.0, max_size: int = 200_000) -> None:
        self.ttl = ttl
        self.max_size = max_size
        self._held: set[int] = set()
        self._order: deque[int] = deque()  # the held keys, oldest first
        self._run_at: deque[float] = deque()  # each run's expiry, oldest first
        self._run_len: deque[int] = deque()  # how many of ``_order`` each run covers
        # When the oldest id expires (inf: none held): most calls need not look at it.
        self._first_expiry = math.inf

    def __len__(self) -> int:
        """Ids held now (expired ones go at the next call past their expiry)."""
        return len(self._held)

    def seen(self, event_id: str, now: float) -> bool:
        """True if ``event_id`` was seen within the TTL; otherwise remember it."""
        held = self._held
        if now >= self._first_expiry or len(held) >= self.max_size:
            self._forget(now)
        key = hash(event_id) & _KEY_MASK
        if key in held:
            return True
        held.add(key)
        self._order.append(key)
        at = now + self.ttl
        run_at = self._run_at
        if run_at and run_at[-1] == at:
            self._run_len[-1] += 1
        else:
            run_at.append(at)
            self._run_len.append(1)
            if len(run_at) == 1:  # the only run held: the oldest
                self._first_expiry = at
        return False

    def _forget(self, now: float) -> None:
        """Drop the ids expired at ``now``, and the oldest ones beyond ``max_size - 1``."""
        held, order, run_at, run_len = self._held, self._order, self._run_at, self._run_len
        while run_at:
            at = run_at[0]
            if at > now and len(held) < self.max_size:
                self._first_expiry = at
                return
            held.remove(order.popleft())
            if run_len[0] == 1:
                run_at.popleft()
                run_len.popleft()
            else:
                run_len[0] -= 1
        self._first_expiry = math.inf
