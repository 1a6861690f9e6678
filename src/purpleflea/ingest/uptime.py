"""Per venue and hour: connection uptime, gaps, and the throttle's pressure (issue #18).

:class:`Ledger` is the pure core (no clock, no I/O: every call carries its time in ms). The
connection runner tells it when a connection goes up or down, the ingest tells it each event,
and a driver drains what changed into the store (:meth:`Ledger.drain`):

- **uptime**: per exchange and UTC hour, the milliseconds its connections were up and were
  watched (summed over connections; ``up_ms / watched_ms`` is the uptime share);
- **gaps**: a connection that was delivering and went down opens a gap at the last moment it
  is known to have delivered (its last frame, or its connect), closed when it is up again;
  its ``reason`` is the failure's kind (``closed``, ``silent``, ``unreachable``, ...). Repair
  (``ingest/repair.py``) later marks it ``repaired`` (with how many events) or ``open`` (why);
- **pressure**, for ``snapshot`` venues (one event per symbol per second at most): the
  distinct (symbol, second) pairs that carried an event, and the symbols seen, per hour; the
  share of symbol-seconds used is ``symbol_seconds / (symbols * up_ms / connections / 1000)``.
  Near 1 the throttle hides much; near 0 it hides little.

Hour rows are deltas since the last drain (the store adds them up); the symbol and
connection counts are the hour's running distinct counts (the store keeps the larger).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import msgspec

HOUR_MS = 3_600_000

GapRepair = str  # "pending" | "repaired" | "open"


class Gap(msgspec.Struct, frozen=True, kw_only=True):
    """A window in which one connection delivered nothing it should have."""

    id: str
    exchange: str
    connection: str
    start_ms: int
    #: None while the connection is still down.
    end_ms: int | None
    reason: str
    #: ``pending`` (not tried yet), ``repaired`` (the window was fetched), ``open`` (it
    #: could not be: ``note`` says why).
    repair: GapRepair = "pending"
    repaired_events: int = 0
    note: str = ""


class HourRow(msgspec.Struct, frozen=True, kw_only=True):
    """One exchange's hour (deltas since the previous drain, see the module docstring)."""

    exchange: str
    hour_ms: int
    up_ms: int
    watched_ms: int
    #: Connections watched this hour so far (the store keeps the larger).
    connections: int = 1
    #: Distinct (symbol, second) pairs with an event; None unless a snapshot venue.
    symbol_seconds: int | None = None
    #: Distinct symbols with an event this hour so far; None unless a snapshot venue.
    symbols: int | None = None


@dataclass
class _Link:
    exchange: str
    up: bool
    since_ms: int
    connected_ms: int = 0
    last_frame_ms: int | None = None
    gap: Gap | None = None


@dataclass
class _Hour:
    up_ms: int = 0
    watched_ms: int = 0
    seconds: set[tuple[str, int]] = field(default_factory=set)
    new_seconds: int = 0
    symbols: set[str] = field(default_factory=set)
    links: set[str] = field(default_factory=set)


def hour_of(ms: int) -> int:
    """The start (ms) of the UTC hour holding ``ms``."""
    return ms - ms % HOUR_MS


def split_hours(start_ms: int, end_ms: int) -> Iterable[tuple[int, int]]:
    """``[start_ms, end_ms)`` cut at hour boundaries: ``(hour start, ms in that hour)``."""
    at = start_ms
    while at < end_ms:
        hour = hour_of(at)
        upto = min(end_ms, hour + HOUR_MS)
        yield hour, upto - at
        at = upto


class Ledger:
    """Uptime, gaps and pressure of every watched connection (see the module docstring).

    ``snapshot`` lists the exchanges whose pressure is measured.
    """

    def __init__(self, snapshot: Iterable[str] = ()) -> None:
        self.snapshot = frozenset(snapshot)
        self._links: dict[str, _Link] = {}
        self._hours: dict[tuple[str, int], _Hour] = {}
        self._changed: dict[str, Gap] = {}
        #: The latest time any call carried: the ledger's own clock (it reads none).
        self._latest_ms: int | None = None

    def _told(self, at_ms: int) -> None:
        if self._latest_ms is None or at_ms > self._latest_ms:
            self._latest_ms = at_ms

    def watch(self, connection: str, exchange: str, at_ms: int) -> None:
        """Start accounting ``connection`` (down until :meth:`up`)."""
        self._told(at_ms)
        if connection not in self._links:
            self._links[connection] = _Link(exchange, up=False, since_ms=at_ms)

    def up(self, connection: str, exchange: str, at_ms: int) -> Gap | None:
        """``connection`` is connected and subscribed; returns the gap this closes, if any."""
        self.watch(connection, exchange, at_ms)
        link = self._links[connection]
        self._accrue(connection, link, at_ms)
        link.up, link.connected_ms, link.last_frame_ms = True, at_ms, None
        gap, link.gap = link.gap, None
        if gap is None:
            return None
        closed = msgspec.structs.replace(gap, end_ms=max(at_ms, gap.start_ms))
        self._note(closed)
        return closed

    def frame(self, connection: str, at_ms: int) -> None:
        """A frame arrived on ``connection`` (its data reached us up to ``at_ms``)."""
        # Not told the clock: every frame would pay for it, and the drains (every 10 s) and
        # the connections' ups and downs tell it often enough for an hour's bound.
        link = self._links.get(connection)
        if link is not None:
            link.last_frame_ms = at_ms

    def down(self, connection: str, exchange: str, at_ms: int, reason: str) -> Gap | None:
        """``connection`` failed (or failed to connect); returns the gap it opens, if any.

        Only a connection that was up opens a gap: retries while down extend it, and a
        connection that never came up is downtime, not a gap in data it never delivered.
        """
        self.watch(connection, exchange, at_ms)
        link = self._links[connection]
        self._accrue(connection, link, at_ms)
        if not link.up:
            return None
        link.up = False
        start = max(link.connected_ms, link.last_frame_ms or link.connected_ms)
        gap = Gap(
            id=f"{connection}:{start}",
            exchange=exchange,
            connection=connection,
            start_ms=start,
            end_ms=None,
            reason=reason,
        )
        link.gap = gap
        self._note(gap)
        return gap

    def stop(self, connection: str, at_ms: int) -> None:
        """Stop accounting ``connection`` (the process is stopping: not a venue gap)."""
        self._told(at_ms)
        link = self._links.pop(connection, None)
        if link is not None:
            self._accrue(connection, link, at_ms)

    def settle(self, gap: Gap) -> None:
        """Record a gap's repair outcome (``repair``, ``repaired_events``, ``note`` set)."""
        self._note(gap)

    def event(self, exchange: str, symbol: str, ts_ms: int) -> None:
        """An event of ``exchange`` on ``symbol`` at ``ts_ms`` (counts for snapshot venues).

        One stamped past the next hour (a venue's clock far ahead) counts in the next hour:
        an hour is forgotten only once past, so every future hour named was held until its
        time came, and a stream of them grew the ledger without bound."""
        if exchange not in self.snapshot:
            return
        hour_ms = hour_of(ts_ms)
        if self._latest_ms is not None:
            hour_ms = min(hour_ms, hour_of(self._latest_ms) + HOUR_MS)
        hour = self._hour(exchange, hour_ms)
        key = (symbol, ts_ms // 1000)
        if key not in hour.seconds:
            hour.seconds.add(key)
            hour.new_seconds += 1
        hour.symbols.add(symbol)

    def drain(self, now_ms: int) -> tuple[list[HourRow], list[Gap]]:
        """Hour deltas accrued up to ``now_ms`` and the gaps changed since the last drain.

        Hours before ``now_ms``'s are final and forgotten once drained.
        """
        self._told(now_ms)
        for connection, link in self._links.items():
            self._accrue(connection, link, now_ms)
        rows = []
        current = hour_of(now_ms)
        for (exchange, hour_ms), hour in sorted(self._hours.items()):
            measured = exchange in self.snapshot
            if hour.up_ms or hour.watched_ms or hour.new_seconds:
                rows.append(
                    HourRow(
                        exchange=exchange,
                        hour_ms=hour_ms,
                        up_ms=hour.up_ms,
                        watched_ms=hour.watched_ms,
                        connections=max(1, len(hour.links)),
                        symbol_seconds=hour.new_seconds if measured else None,
                        symbols=len(hour.symbols) if measured else None,
                    )
                )
            hour.up_ms = hour.watched_ms = hour.new_seconds = 0
        for key in [k for k in self._hours if k[1] < current]:
            del self._hours[key]
        changed, self._changed = list(self._changed.values()), {}
        return rows, changed

    def _note(self, gap: Gap) -> None:
        self._changed[gap.id] = gap

    def _hour(self, exchange: str, hour_ms: int) -> _Hour:
        key = (exchange, hour_ms)
        found = self._hours.get(key)
        if found is None:
            found = self._hours[key] = _Hour()
        return found

    def _accrue(self, connection: str, link: _Link, to_ms: int) -> None:
        for hour_ms, span in split_hours(link.since_ms, to_ms):
            hour = self._hour(link.exchange, hour_ms)
            hour.links.add(connection)
            hour.watched_ms += span
            if link.up:
                hour.up_ms += span
        link.since_ms = max(link.since_ms, to_ms)
