"""The pipeline's pure core: venue events in, a batch plan out. No I/O, no asyncio.

:class:`Sequencer` decides everything the pipeline promises about seqs; the async driver
(:mod:`purpleflea.server.pipeline`) only performs its plans, as websockets' ``Connection``
performs what its sans-I/O ``Protocol`` decides:

- **Bounded intake.** :meth:`Sequencer.accept` queues at most ``buffer_limit`` events; beyond
  that it drops and counts them (``dropped_buffer_full``) instead of growing without end.
- **Sequencing.** :meth:`Sequencer.next_plan` takes up to ``batch_limit`` queued events, drops
  the ones seen before (by id), gives each new event the next ``seq`` and its cascade score,
  and each alert the event caused the seqs right after it. Seqs are final once assigned: a
  plan whose writes fail is retried as it is, so seqs stay gapless.
- **Persisted before published.** A :class:`BatchPlan` says what to write next (events, then
  the alerts about them) and gives its bus messages only once every write succeeded; only
  the events the store took as new are published.
- **One plan at a time.** A new plan cannot open while one is unfinished, so the bus sees seqs
  in ascending order and a client's resume cursor never skips an unseen seq.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import msgspec

from purpleflea.bus.base import Message, cascade_frame, liquidation_frame
from purpleflea.formatting import printable
from purpleflea.ingest.dedupe import Deduper
from purpleflea.model import (
    ID_MAX,
    NAME_MAX,
    CascadeAlert,
    Liquidation,
    MarketSnapshot,
    Side,
    UnsizedLiquidation,
    VenueLiquidation,
    names_problem,
    to_liquidation,
)
from purpleflea.server.latency import MetricFamily
from purpleflea.venues import registry

log = logging.getLogger("purpleflea.pipeline")
#: Distinct names kept as judged; past it the set starts again.
_GOOD_NAMES_MAX = 100_000


class Scorer(Protocol):
    """The cascade engine as the pipeline uses it (see :mod:`purpleflea.engine.cascade`)."""

    def observe(
        self, market: str, side: Side, size_usd: float, price: float, ts: int, exchange: str
    ) -> int: ...

    def drain_alerts(self) -> list[CascadeAlert]: ...

    def tick(self, now_ms: int) -> list[CascadeAlert]: ...


class NotPersisted(RuntimeError):
    """A plan's messages were asked for before all of its writes succeeded."""


@dataclass(frozen=True, slots=True)
class WriteEvents:
    """Append these events to the store; it answers with the ones new by id."""

    events: list[Liquidation]


@dataclass(frozen=True, slots=True)
class WriteAlerts:
    """Append these alerts to the store."""

    alerts: list[CascadeAlert]


class BatchPlan:
    """One batch's sequenced events and alerts, and how far their persistence has got.

    The driver asks :meth:`next_write` what to store, reports each success
    (:meth:`events_written`, :meth:`alerts_written`), and, once :attr:`persisted`, publishes
    :meth:`messages`. A failed write is simply not reported: the next :meth:`next_write`
    asks for the same write again, with the same seqs.
    """

    __slots__ = ("alerts", "alerts_stored", "events", "size", "stored")

    def __init__(
        self,
        events: list[Liquidation],
        alerts: list[CascadeAlert],
        *,
        size: int,
        stored: list[Liquidation] | None = None,
    ) -> None:
        self.events = events
        self.alerts = alerts
        #: Venue events taken from the queue for this plan (duplicates and unsized included).
        self.size = size
        #: The events the store took as new; None until the events are written.
        self.stored = stored
        self.alerts_stored = not alerts

    def next_write(self) -> WriteEvents | WriteAlerts | None:
        """What to store next: events first, then the alerts about them (an alert is never on
        disk before its events); None once everything is."""
        if self.stored is None:
            return WriteEvents(self.events)
        if not self.alerts_stored:
            return WriteAlerts(self.alerts)
        return None

    def events_written(self, stored: list[Liquidation]) -> None:
        """The store took the events; ``stored`` are those new by id."""
        self.stored = stored

    def alerts_written(self) -> None:
        if self.stored is None:
            raise NotPersisted("alerts written before the events they are about")
        self.alerts_stored = True

    @property
    def persisted(self) -> bool:
        return self.stored is not None and self.alerts_stored

    @property
    def store_duplicates(self) -> int:
        """Events the store already held (by id): stored before, so not published again."""
        return 0 if self.stored is None else len(self.events) - len(self.stored)

    def messages(self, now: float = 0.0) -> list[Message]:
        """The bus messages, in seq order: the stored events and the alerts (``now``: the
        monotonic time they are published at, for the stage latencies).

        Raises :class:`NotPersisted` while a write is outstanding: nothing is published about
        an event that is not on disk.
        """
        if self.stored is None or not self.alerts_stored:
            raise NotPersisted(
                f"batch of {len(self.events)} events and {len(self.alerts)} alerts: "
                f"{'events' if self.stored is None else 'alerts'} not stored yet"
            )
        items = [Message("liquidations", e.seq, e, liquidation_frame(e), now) for e in self.stored]
        if self.alerts:  # events are in seq order already; alerts interleave with them
            items += [Message("cascades", a.seq, a, cascade_frame(a), now) for a in self.alerts]
            items.sort(key=lambda message: message.seq)
        return items


class Sequencer:
    """Sequences venue events into plans; see the module docstring.

    ``on_event`` is told each new event as it is sequenced (market state, heatmap prices).
    """

    def __init__(
        self,
        *,
        scorer: Scorer | None = None,
        batch_limit: int = 2_000,
        buffer_limit: int = 200_000,
        on_event: Callable[[Liquidation], None] | None = None,
        counters: Counter[str] | None = None,
    ) -> None:
        if buffer_limit < 1:
            raise ValueError(f"Sequencer buffer_limit must be at least 1, got {buffer_limit}")
        if batch_limit < 1:
            raise ValueError(f"Sequencer batch_limit must be at least 1, got {batch_limit}")
        self.scorer = scorer
        self.batch_limit = batch_limit
        self.buffer_limit = buffer_limit
        self.on_event = on_event
        self.counters: Counter[str] = counters if counters is not None else Counter()
        #: The next seq to assign.
        self.next_seq = 1
        #: The highest seq published: everything at or below it is stored and on the bus.
        self.published_seq = 0
        #: True from the first drop of a full buffer until the backlog is stored.
        self.buffer_full = False
        self._pending: list[tuple[VenueLiquidation, int]] = []
        self._deduper = Deduper(ttl=3_600.0, max_size=500_000)
        #: ``duplicates`` by exchange: where repeats come from (a reconnect's replay), and
        #: where a distinct id wrongly taken for a held one would show.
        self.duplicates_by_exchange: Counter[str] = Counter()
        self._open: BatchPlan | None = None
        #: Markets, and symbols and exchanges, already judged storable (each on its own, as
        #: :func:`names_problem` judges them): checked once, not per event. Markets apart: a
        #: symbol or exchange passes looser rules (no BASE-PERP shape) than a market.
        self._good_markets: set[str] = set()
        self._good_names: set[str] = set()
        #: Cascades of a warmed engine no client heard start (:mod:`.cascade_handover`): their
        #: alerts are dropped until the one that exhausts them.
        self._muted: set[str] = set()

    def mute(self, cascades: set[str]) -> None:
        """Drop every alert of ``cascades``, up to and including the one that ends each."""
        self._muted |= cascades

    def resume(self, last_stored_seq: int) -> None:
        """Continue after the store's highest seq (a restart)."""
        self.next_seq = last_stored_seq + 1
        self.published_seq = last_stored_seq

    # -- intake ---------------------------------------------------------------------------

    def accept(self, event: VenueLiquidation, received_at: int) -> bool:
        """Queue one venue event; False (and counted) when ``buffer_limit`` events wait."""
        self.counters["received"] += 1
        # Each name judged once; the id (unique) each time, but not for a formula's start:
        # every venue's id starts with its exchange (the import judges all of it).
        good = self._good_names
        event_id = event.id
        known = (
            event.market in self._good_markets
            and event.symbol in good
            and event.exchange in good
            and len(event_id) <= ID_MAX
            and event_id.isprintable()
        )
        if not known and not self._names_storable(event):
            return False
        if len(self._pending) >= self.buffer_limit:
            self.counters["dropped_buffer_full"] += 1
            if not self.buffer_full:
                self.buffer_full = True
                log.error(
                    "ingest buffer full (%d events waiting for the store): dropping new "
                    "events until it drains (counted as dropped_buffer_full)",
                    len(self._pending),
                )
            return False
        self._pending.append((event, received_at))
        return True

    def _names_storable(self, event: VenueLiquidation) -> bool:
        """Whether ``event``'s names may be stored and served (:func:`names_problem`); a
        venue's that may not are dropped, counted as ``rejected_names`` and the first logged:
        a venue (a Hyperliquid builder's perp is named by whoever deploys it) or anything
        speaking for one chose text every user reads."""
        problem = names_problem(event.market, event.symbol, event.exchange, event.id)
        if problem is None:
            self._judged_good(event.market, event.symbol, event.exchange)
            return True
        if not self.counters["rejected_names"]:
            log.warning(
                "%s event dropped: %s (further ones are counted as rejected_names)",
                printable(event.exchange[:NAME_MAX]),
                problem,
            )
        self.counters["rejected_names"] += 1
        return False

    def _judged_good(self, market: str, symbol: str, exchange: str) -> None:
        if len(self._good_names) + len(self._good_markets) >= _GOOD_NAMES_MAX:
            self._good_names.clear()
            self._good_markets.clear()
        self._good_markets.add(market)
        self._good_names.update((symbol, exchange))

    def snapshot_names_problem(self, snapshot: MarketSnapshot) -> str | None:
        """Why an open-interest snapshot's names cannot be served (:func:`names_problem`, its
        instrument ``exchange:symbol`` as the id), or None; each name judged once, as an
        event's. A venue names its snapshots as it names its liquidations."""
        market, symbol, exchange = snapshot.market, snapshot.symbol, snapshot.exchange
        good = self._good_names
        if market in self._good_markets and symbol in good and exchange in good:
            return None
        problem = names_problem(market, symbol, exchange, f"{exchange}:{symbol}")
        if problem is None:
            self._judged_good(market, symbol, exchange)
        return problem

    def dedupe_metrics(self) -> list[MetricFamily]:
        """``/v1/metrics`` families: the dedupe window's size and its drops per exchange."""
        return [
            (
                "dedupe_window_ids",
                "gauge",
                "Event ids the sequencer remembers to drop repeats (an hour, at most 500,000).",
                [("", float(len(self._deduper)))],
            ),
            (
                "dedupe_duplicates_total",
                "counter",
                "Events the sequencer dropped as repeats of an id in its window, per exchange.",
                [
                    (f'{{exchange="{exchange}"}}', float(count))
                    for exchange, count in sorted(self.duplicates_by_exchange.items())
                ],
            ),
        ]

    @property
    def pending(self) -> int:
        """Events queued and not yet in a plan."""
        return len(self._pending)

    @property
    def buffered(self) -> int:
        """Events accepted and not yet stored: queued, or in the open plan."""
        return len(self._pending) + (self._open.size if self._open is not None else 0)

    # -- plans ----------------------------------------------------------------------------

    def next_plan(self, now: float) -> BatchPlan | None:
        """Sequence up to ``batch_limit`` queued events (``now``: monotonic seconds, for the
        id deduplication's expiry); None when nothing is queued (or sequencing failed)."""
        self._check_closed()
        if not self._pending:
            return None
        batch = self._pending[: self.batch_limit]
        del self._pending[: self.batch_limit]
        try:
            self._open = self._sequence(batch, now)
        except Exception:  # a bug: the batch is lost (counted), the pipeline keeps serving
            self.counters["flush_errors"] += len(batch)
            log.exception("could not sequence a batch of %d events", len(batch))
            return None
        return self._open

    def _sequence(self, batch: list[tuple[VenueLiquidation, int]], now: float) -> BatchPlan:
        events: list[Liquidation] = []
        alerts: list[CascadeAlert] = []
        seen, coverage_of = self._deduper.seen, registry.coverage_of  # once a batch, not per event
        for venue, received_at in batch:
            if seen(venue.id, now):
                self.counters["duplicates"] += 1
                self.duplicates_by_exchange[venue.exchange] += 1
                continue
            try:
                event = to_liquidation(
                    venue,
                    seq=self.next_seq,
                    received_at=received_at,
                    coverage=coverage_of(venue.exchange),
                )
            except UnsizedLiquidation as exc:
                self.counters["unsized"] += 1
                log.debug("%s", exc)
                continue
            self.next_seq += 1
            if self.scorer is not None:
                event, caused = self._score(event)
                if caused:
                    alerts.extend(self._assign(caused))
            events.append(event)
            if self.on_event is not None:
                self.on_event(event)
        return BatchPlan(events, alerts, size=len(batch))

    def tick_plan(self, now_ms: int) -> BatchPlan | None:
        """The alerts the scorer raises on its own at ``now_ms`` (a cascade ending), as a plan
        with no events; None when there are none (or no scorer)."""
        self._check_closed()
        if self.scorer is None:
            return None
        try:
            alerts = self.scorer.tick(now_ms)
        except Exception:
            self.counters["tick_errors"] += 1
            log.exception("cascade tick failed")
            return None
        return self.alerts_plan(alerts)

    def alerts_plan(self, alerts: list[CascadeAlert]) -> BatchPlan | None:
        """``alerts`` as a plan with no events, each given the next seq (a tick's, or a
        restart's handover: :mod:`purpleflea.server.cascade_handover`); None when empty."""
        self._check_closed()
        if not alerts:
            return None
        self._open = BatchPlan([], self._assign(alerts), size=0, stored=[])
        return self._open

    def published(self, seq: int) -> None:
        """``seq`` is on the bus: a new stream client may start after it."""
        self.published_seq = max(self.published_seq, seq)

    def close(self, plan: BatchPlan, *, published: bool) -> None:
        """``plan`` is done: persisted and ``published`` (or abandoned, at shutdown or after a
        bug); the next plan may open."""
        if plan is not self._open:
            raise RuntimeError("closing a plan that is not the open one")
        self._open = None
        self.counters["duplicates"] += plan.store_duplicates
        if published:
            self.counters["published"] += len(plan.stored or [])
            self.counters["cascade_alerts"] += len(plan.alerts)

    def warm(self, event: Liquidation) -> None:
        """Replay a stored event through the scorer (a restart); its alerts were published
        before the restart, so they are dropped."""
        if self.scorer is None:
            return
        self.scorer.observe(
            event.market, event.side, event.size_usd, event.price, event.ts, event.exchange
        )
        self.scorer.drain_alerts()

    def _check_closed(self) -> None:
        if self._open is not None:
            raise RuntimeError(
                "a plan is still open: close it before sequencing more (seqs must reach the "
                "bus in ascending order)"
            )

    def _score(self, event: Liquidation) -> tuple[Liquidation, list[CascadeAlert]]:
        """The event with its cascade score, and the alerts it caused.

        A scorer bug costs the event its score (0), never the event itself.
        """
        assert self.scorer is not None
        try:
            score = self.scorer.observe(
                event.market, event.side, event.size_usd, event.price, event.ts, event.exchange
            )
            alerts = self.scorer.drain_alerts()
        except Exception:
            self.counters["scorer_errors"] += 1
            log.exception("cascade scorer failed on %s", event.id)
            return event, []
        return msgspec.structs.replace(event, cascade_score=score), alerts

    def _assign(self, alerts: list[CascadeAlert]) -> list[CascadeAlert]:
        """Each alert takes the next seq: alerts share the events' seq space, so one cursor
        resumes both channels. A muted cascade's alerts take none: they are dropped."""
        sequenced = []
        for alert in alerts:
            if self._muted and alert.id in self._muted:
                if alert.status == "exhausted":
                    self._muted.discard(alert.id)
                continue
            sequenced.append(msgspec.structs.replace(alert, seq=self.next_seq))
            self.next_seq += 1
        return sequenced
