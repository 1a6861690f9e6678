"""Gap repair end to end: a Deribit connection drops, reconnects, and the missed window is
fetched from Deribit's REST trade history (a fake speaking its protocol) exactly once."""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace

from purpleflea.ingest.connection import Backoff
from purpleflea.ingest.live import LiveIngest
from purpleflea.ingest.repair import plan
from purpleflea.ingest.uptime import Gap
from purpleflea.model import VenueLiquidation
from purpleflea.venues import registry
from purpleflea.venues.deribit import repair as deribit_repair
from purpleflea.venues.venue import Absent
from tests.fakes.exchanges import FakeExchange, dialect_for
from tests.fakes.history import PATH, DeribitHistory, notification, trade
from tests.fakes.rest import FakeRest


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


async def _until(condition: object, timeout: float = 15.0) -> None:
    assert callable(condition)
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met")
        await asyncio.sleep(0.01)


def _ids(events: list[VenueLiquidation]) -> list[str]:
    return [e.id for e in events]


async def test_a_reconnect_repairs_its_gap_from_rest_exactly_once() -> None:
    history = DeribitHistory()
    seen_live = trade("BTC-1", _now_ms())
    events: list[VenueLiquidation] = []
    async with (
        FakeRest({PATH: history}) as rest,
        FakeExchange(dialect_for("deribit"), [notification(seen_live)]) as venue,
    ):
        source = replace(
            deribit_repair.SOURCE, base=rest.base, instruments=lambda _: ["BTC-PERPETUAL"]
        )
        ingest = LiveIngest(
            lambda event, _received_at: events.append(event),
            exchanges=["deribit"],
            urls={"deribit": venue.url},
            catalog_sources=(),
            poll_sources=(),
            repairs={"deribit": source},
            backoff=lambda: Backoff(base=0.01, cap=0.05),
        )
        table = _GapTable(ingest)
        await ingest.start()
        try:
            await _until(lambda: _ids(events) == ["deribit:BTC-1:long"])
            # The venue's history holds the trade we saw and one we will miss while down.
            history.add(seen_live)
            # The connection is dropped and refused for 2 s; trades happen meanwhile.
            await venue.outage(2.0)
            dropped_at = _now_ms()
            missed = trade("BTC-2", dropped_at + 300)
            history.add(missed)
            history.add(trade("BTC-3", dropped_at + 400, liquidation=None))  # not one
            await _until(lambda: table.settled(1))
            await _until(lambda: "deribit:BTC-2:long" in _ids(events))

            # A second outage: the window is asked for again, nothing is published twice.
            await venue.outage(0.3)
            await _until(lambda: table.settled(2))
        finally:
            await ingest.stop()
    assert _ids(events) == ["deribit:BTC-1:long", "deribit:BTC-2:long"]
    repaired = next(e for e in events if e.id == "deribit:BTC-2:long")
    assert repaired.ts == dropped_at + 300  # the original time, not the repair's
    first, second = sorted(table.gaps.values(), key=lambda g: g.start_ms)
    assert (first.repair, first.repaired_events, first.reason) == ("repaired", 1, "closed")
    assert first.start_ms <= dropped_at + 300 <= (first.end_ms or 0)
    assert (second.repair, second.repaired_events) == ("repaired", 0)
    assert len(history.asked) == 2  # one request per gap (one instrument, one page)


class _GapTable:
    """The ledger's gap changes, drained as the coverage recorder drains them."""

    def __init__(self, ingest: LiveIngest) -> None:
        self.ingest = ingest
        self.gaps: dict[str, Gap] = {}

    def settled(self, count: int) -> bool:
        """True once ``count`` gaps have a repair outcome."""
        _rows, changed = self.ingest.ledger.drain(_now_ms())
        self.gaps.update((gap.id, gap) for gap in changed)
        return sum(1 for g in self.gaps.values() if g.repair != "pending") >= count


def test_gaps_without_a_rest_history_stay_open_and_say_why() -> None:
    gap = Gap(id="bybit_linear:1", exchange="bybit", connection="bybit_linear",
              start_ms=1_000, end_ms=2_000, reason="silent")  # fmt: skip
    bybit = registry.REPAIRS["bybit"]
    assert isinstance(bybit, Absent)
    assert plan(gap, bybit, 3_000) == f"no REST history: {bybit.reason}"
    old = replace(deribit_repair.SOURCE, reach_ms=60_000)
    assert str(plan(gap, old, 1_000 + 61_000)).startswith("window too old")
    window = plan(gap, deribit_repair.SOURCE, 3_000)
    assert not isinstance(window, str)
    assert (window.start_ms, window.end_ms) == (1_000 - 2_000, 2_000 + 2_000)


async def test_a_failed_repair_leaves_the_gap_open_with_the_error() -> None:
    events: list[VenueLiquidation] = []
    async with (
        FakeRest({}) as rest,  # the history endpoint answers 404
        FakeExchange(dialect_for("deribit"), [notification(trade("BTC-1", _now_ms()))]) as venue,
    ):
        source = replace(
            deribit_repair.SOURCE, base=rest.base, instruments=lambda _: ["BTC-PERPETUAL"]
        )
        ingest = LiveIngest(
            lambda event, _received_at: events.append(event),
            exchanges=["deribit"],
            urls={"deribit": venue.url},
            catalog_sources=(),
            poll_sources=(),
            repairs={"deribit": source},
            backoff=lambda: Backoff(base=0.01, cap=0.05),
        )
        table = _GapTable(ingest)
        await ingest.start()
        try:
            await _until(lambda: len(events) == 1)
            await venue.outage(0.3)
            await _until(lambda: table.settled(1))
        finally:
            await ingest.stop()
    (gap,) = table.gaps.values()
    assert (gap.repair, gap.repaired_events) == ("open", 0)
    assert gap.note.startswith("error: "), gap.note
    assert "404" in gap.note, gap.note
