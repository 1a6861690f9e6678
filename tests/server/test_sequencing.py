"""The pipeline's pure core, without I/O or asyncio: dedupe, seqs, scores, alert seqs, the
bounded buffer, and persisted-before-published (a failed write keeps its seqs; nothing is
published about an event that is not stored)."""

from __future__ import annotations

import msgspec
import pytest

from purpleflea.model import CascadeAlert, Liquidation, Side, VenueLiquidation
from purpleflea.server.sequencing import (
    BatchPlan,
    NotPersisted,
    Sequencer,
    WriteAlerts,
    WriteEvents,
)
from tests.events import stored_alert
from tests.server.conftest import T0, venue_event

NOW = 1_000.0  # monotonic seconds, for the id deduplication's expiry


def _alert(market: str, side: Side, ts: int, status: str = "started") -> CascadeAlert:
    """An unsequenced alert as the scorer raises it (seq 0 until the sequencer numbers it)."""
    return stored_alert(
        0,
        id=f"cascade:{market}:{side}",
        status=status,
        market=market,
        side=side,
        started_at=ts,
        updated_at=ts,
    )


class _Scorer:
    """Scores every event 5 and raises an alert on every ``alert_every``-th event; its tick
    raises one alert per call when ``tick_alerts``."""

    def __init__(self, alert_every: int = 0, *, fail_on: int = 0, tick_alerts: bool = False):
        self.observed = 0
        self.alert_every = alert_every
        self.fail_on = fail_on
        self.tick_alerts = tick_alerts
        self._alerts: list[CascadeAlert] = []

    def observe(
        self, market: str, side: Side, size_usd: float, price: float, ts: int, exchange: str
    ) -> int:
        self.observed += 1
        if self.observed == self.fail_on:
            raise ZeroDivisionError("scorer bug")
        if self.alert_every and self.observed % self.alert_every == 0:
            self._alerts.append(_alert(market, side, ts))
        return 5

    def drain_alerts(self) -> list[CascadeAlert]:
        alerts, self._alerts = self._alerts, []
        return alerts

    def tick(self, now_ms: int) -> list[CascadeAlert]:
        return [_alert("BTC-PERP", "long", now_ms, "exhausted")] if self.tick_alerts else []


def _events(n: int) -> list[VenueLiquidation]:
    return [venue_event(ts=T0 + 1_000 * i) for i in range(n)]


def _accept(core: Sequencer, events: list[VenueLiquidation]) -> None:
    for event in events:
        core.accept(event, T0)


def _store_all(plan: BatchPlan) -> None:
    """What the driver does when every write succeeds (the store holding none of them)."""
    while (write := plan.next_write()) is not None:
        if isinstance(write, WriteEvents):
            plan.events_written(list(write.events))
        else:
            plan.alerts_written()


def test_new_events_get_gapless_seqs_and_duplicates_none() -> None:
    core = Sequencer()
    events = _events(5)
    _accept(core, events + events[:2])  # the first two arrive twice
    plan = core.next_plan(NOW)
    assert plan is not None
    assert [e.seq for e in plan.events] == [1, 2, 3, 4, 5]
    assert [e.id for e in plan.events] == [e.id for e in events]
    assert core.counters["duplicates"] == 2


def test_an_alert_takes_the_seqs_right_after_the_event_that_caused_it() -> None:
    core = Sequencer(scorer=_Scorer(alert_every=3))
    _accept(core, _events(5))
    plan = core.next_plan(NOW)
    assert plan is not None
    assert [e.seq for e in plan.events] == [1, 2, 3, 5, 6]
    assert [a.seq for a in plan.alerts] == [4]
    assert all(e.cascade_score == 5 for e in plan.events)
    _store_all(plan)
    assert [m.seq for m in plan.messages()] == [1, 2, 3, 4, 5, 6]
    assert [m.channel for m in plan.messages()][3] == "cascades"


def test_nothing_is_published_before_events_and_alerts_are_stored() -> None:
    core = Sequencer(scorer=_Scorer(alert_every=2))
    _accept(core, _events(4))
    plan = core.next_plan(NOW)
    assert plan is not None
    write = plan.next_write()
    assert isinstance(write, WriteEvents)  # events first: an alert is never stored before them
    with pytest.raises(NotPersisted, match="events not stored yet"):
        plan.messages()
    with pytest.raises(NotPersisted, match="alerts written before the events"):
        plan.alerts_written()
    plan.events_written(list(write.events))
    assert isinstance(plan.next_write(), WriteAlerts)
    with pytest.raises(NotPersisted, match="alerts not stored yet"):
        plan.messages()
    plan.alerts_written()
    assert plan.next_write() is None
    assert plan.persisted
    assert len(plan.messages()) == 6


def test_a_failed_write_is_asked_again_with_the_same_seqs_and_the_next_batch_follows() -> None:
    core = Sequencer(scorer=_Scorer(alert_every=2), batch_limit=4)
    _accept(core, _events(6))
    plan = core.next_plan(NOW)
    assert plan is not None
    first = plan.next_write()
    # The store failed: the write is not reported, and asked for again, unchanged.
    for _ in range(3):
        again = plan.next_write()
        assert again == first
    assert isinstance(first, WriteEvents)
    plan.events_written(list(first.events))
    alerts = plan.next_write()
    assert isinstance(alerts, WriteAlerts)
    assert plan.next_write() == alerts  # the alert write failed: retried, events not rewritten
    plan.alerts_written()
    core.close(plan, published=True)
    following = core.next_plan(NOW)
    assert following is not None
    _store_all(following)
    seqs = sorted(m.seq for p in (plan, following) for m in p.messages())
    assert seqs == list(range(1, len(seqs) + 1))  # gapless across the failures


def test_events_the_store_already_held_are_not_published_again() -> None:
    core = Sequencer()
    _accept(core, _events(4))
    plan = core.next_plan(NOW)
    assert plan is not None
    write = plan.next_write()
    assert isinstance(write, WriteEvents)
    plan.events_written(write.events[2:])  # the first two were on disk already (a replay)
    assert [m.seq for m in plan.messages()] == [3, 4]
    core.close(plan, published=True)
    assert core.counters["duplicates"] == 2
    assert core.counters["published"] == 2


def test_one_plan_at_a_time_so_the_bus_sees_seqs_in_order() -> None:
    core = Sequencer(scorer=_Scorer(tick_alerts=True))
    _accept(core, _events(2))
    plan = core.next_plan(NOW)
    assert plan is not None
    _accept(core, _events(1))
    with pytest.raises(RuntimeError, match="a plan is still open"):
        core.next_plan(NOW)
    with pytest.raises(RuntimeError, match="a plan is still open"):
        core.tick_plan(T0)
    _store_all(plan)
    core.close(plan, published=True)
    assert core.next_plan(NOW) is not None


def test_published_seq_moves_only_when_the_driver_says_a_message_is_on_the_bus() -> None:
    core = Sequencer()
    core.resume(41)  # a restart after seq 41
    _accept(core, _events(3))
    plan = core.next_plan(NOW)
    assert plan is not None
    assert [e.seq for e in plan.events] == [42, 43, 44]
    assert core.published_seq == 41  # sequenced, not yet stored nor published
    _store_all(plan)
    core.published(plan.messages()[0].seq)
    assert core.published_seq == 42


def test_the_buffer_is_bounded_and_counts_what_it_drops() -> None:
    core = Sequencer(buffer_limit=3, batch_limit=2)
    _accept(core, _events(2))
    plan = core.next_plan(NOW)  # held: its write keeps failing
    assert plan is not None
    accepted = [core.accept(e, T0) for e in _events(5)]
    assert accepted == [True, True, True, False, False]
    assert core.counters["dropped_buffer_full"] == 2
    assert core.buffer_full
    assert core.buffered == 2 + 3  # the open plan's and the queue's


def test_every_received_event_is_accounted_for() -> None:
    core = Sequencer(buffer_limit=6)
    events = _events(5)
    unsized = msgspec.structs.replace(venue_event(), quantity=None, size_usd=None)
    for event in [*events, events[0], unsized, *_events(3)]:  # 10 in, the buffer holds 6
        core.accept(event, T0)
    while (plan := core.next_plan(NOW)) is not None:
        _store_all(plan)
        core.close(plan, published=True)
    counters = core.counters
    assert counters["received"] == 10
    assert counters["published"] == 5
    assert counters["duplicates"] == 1
    assert counters["unsized"] == 0  # dropped: the buffer was full when it came
    assert counters["dropped_buffer_full"] == 4
    assert counters["received"] == (
        counters["published"]
        + counters["duplicates"]
        + counters["unsized"]
        + counters["dropped_buffer_full"]
    )


def test_an_unsized_event_is_counted_and_burns_no_seq() -> None:
    core = Sequencer()
    unsized = msgspec.structs.replace(venue_event(), quantity=None, size_usd=None)
    _accept(core, [venue_event(), unsized, venue_event()])
    plan = core.next_plan(NOW)
    assert plan is not None
    assert [e.seq for e in plan.events] == [1, 2]
    assert core.counters["unsized"] == 1


def test_a_scorer_bug_costs_the_event_its_score_not_the_event() -> None:
    core = Sequencer(scorer=_Scorer(fail_on=2))
    _accept(core, _events(3))
    plan = core.next_plan(NOW)
    assert plan is not None
    assert [(e.seq, e.cascade_score) for e in plan.events] == [(1, 5), (2, 0), (3, 5)]
    assert core.counters["scorer_errors"] == 1


def test_tick_alerts_are_sequenced_and_stored_before_they_are_published() -> None:
    core = Sequencer(scorer=_Scorer(tick_alerts=True))
    core.resume(9)
    plan = core.tick_plan(T0)
    assert plan is not None
    assert [a.seq for a in plan.alerts] == [10]
    assert isinstance(plan.next_write(), WriteAlerts)  # no events to store first
    with pytest.raises(NotPersisted):
        plan.messages()
    plan.alerts_written()
    assert [m.seq for m in plan.messages()] == [10]
    core.close(plan, published=True)
    assert core.counters["cascade_alerts"] == 1
    assert Sequencer().tick_plan(T0) is None  # no scorer, no alerts


def test_each_sequenced_event_is_told_to_on_event() -> None:
    seen: list[Liquidation] = []
    core = Sequencer(on_event=seen.append)
    events = _events(3)
    _accept(core, [*events, events[1]])
    plan = core.next_plan(NOW)
    assert plan is not None
    assert seen == plan.events
