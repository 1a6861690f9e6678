"""Gap repair end to end: a venue's connection drops, reconnects, and the missed window is
fetched from the venue's REST history (a fake speaking its protocol) exactly once."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import httpx
import pytest

from purpleflea.ingest.backoff import Backoff
from purpleflea.ingest.catalog import Catalogs
from purpleflea.ingest.live import LiveIngest
from purpleflea.ingest.repair import Window, fetch, parts, plan, repair
from purpleflea.ingest.uptime import Gap
from purpleflea.model import VenueLiquidation
from purpleflea.venues import registry
from purpleflea.venues.deribit import repair as deribit_repair
from purpleflea.venues.dydx import repair as dydx_repair
from purpleflea.venues.htx import repair as htx_repair
from purpleflea.venues.kraken import repair as kraken_repair
from purpleflea.venues.okx import repair as okx_repair
from purpleflea.venues.venue import Absent, RepairSource
from tests.fakes.exchanges import FakeExchange, dialect_for
from tests.fakes.history import (
    DYDX_PATH,
    HTX_PATH,
    KRAKEN_PATH,
    OKX_PATH,
    PATH,
    DeribitHistory,
    DydxHistory,
    HtxHistory,
    KrakenHistory,
    OkxHistory,
    dydx_push,
    dydx_trade,
    htx_push,
    htx_row,
    kraken_trade,
    notification,
    okx_detail,
    okx_push,
    trade,
)
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


@dataclass(frozen=True)
class Case:
    """One venue's live connection and REST history, as a gap-repair test needs them."""

    connection: str
    exchange: str
    path: str
    #: A fresh fake history (a FakeRest route with ``add(record)`` and ``asked``).
    history: Callable[[], Any]
    #: ``(n, ts, liquidation)`` -> one record as the channel and the history list it.
    record: Callable[[int, int, bool], Any]
    push: Callable[[Any], str]
    event_id: Callable[[int], str]
    source: RepairSource
    instrument: str
    #: The exchange's other connections, each given a quiet fake of its own.
    others: tuple[str, ...] = ()
    #: Requests per gap: one page, or (HTX, page size undocumented) one and the empty next.
    pages: int = 1


def _okx_record(n: int, ts: int, liquidation: bool) -> tuple[str, dict[str, Any]]:
    # OKX lists only liquidations: a "not one" record is another family's, never asked for.
    return ("BTC-USDT-SWAP" if liquidation else "ETH-USDT-SWAP", okx_detail(ts, sz=str(n)))


CASES = {
    "deribit": Case(
        connection="deribit",
        exchange="deribit",
        path=PATH,
        history=DeribitHistory,
        record=lambda n, ts, liq: trade(f"BTC-{n}", ts, liquidation="T" if liq else None),
        push=notification,
        event_id=lambda n: f"deribit:BTC-{n}:long",
        source=deribit_repair.SOURCE,
        instrument="BTC-PERPETUAL",
    ),
    "dydx": Case(
        connection="dydx_v4",
        exchange="dydx_v4",
        path=DYDX_PATH,
        history=DydxHistory,
        record=lambda n, ts, liq: dydx_trade(f"t-{n}", ts, kind="LIQUIDATED" if liq else "LIMIT"),
        push=dydx_push,
        event_id=lambda n: f"dydx_v4:t-{n}",
        source=dydx_repair.SOURCE,
        instrument="BTC-USD",
    ),
    "htx": Case(
        connection="htx_linear",
        exchange="htx",
        path=HTX_PATH,
        history=HtxHistory,
        record=lambda n, ts, liq: htx_row(ts, volume=n, contract="BTC-USDT" if liq else "ETH-USDT"),
        push=htx_push,
        event_id=lambda n: f"htx:BTC-USDT:{{ts}}:sell:{float(n)}:23350.5",
        source=htx_repair.SOURCE,
        instrument="BTC-USDT",
        others=("htx_coin",),
        pages=2,
    ),
    "kraken": Case(
        connection="kraken_futures",
        exchange="kraken_futures",
        path=KRAKEN_PATH,
        history=KrakenHistory,
        record=lambda n, ts, liq: kraken_trade(f"u-{n}", ts, kind="liquidation" if liq else "fill"),
        push=json.dumps,
        event_id=lambda n: f"kraken_futures:u-{n}",
        source=kraken_repair.SOURCE,
        instrument="PI_XBTUSD",
    ),
    "okx": Case(
        connection="okx",
        exchange="okx",
        path=OKX_PATH,
        history=OkxHistory,
        record=_okx_record,
        push=lambda record: okx_push(*record),
        event_id=lambda n: f"okx:BTC-USDT-SWAP:{{ts}}:net:sell:{n}:60000.1",
        source=okx_repair.SOURCE,
        instrument="SWAP:BTC-USDT",
    ),
}


@pytest.mark.parametrize("name", sorted(CASES))
async def test_a_reconnect_repairs_its_gap_from_rest_exactly_once(name: str) -> None:
    case = CASES[name]
    history = case.history()
    seen_live = case.record(1, _now_ms(), True)
    events: list[VenueLiquidation] = []
    async with (
        FakeRest({case.path: history}) as rest,
        FakeExchange(dialect_for(case.connection), [case.push(seen_live)]) as venue,
        contextlib.AsyncExitStack() as stack,
    ):
        urls = {case.connection: venue.url}
        for other in case.others:
            urls[other] = (await stack.enter_async_context(FakeExchange(dialect_for(other)))).url
        source = replace(case.source, base=rest.base, instruments=lambda _: [case.instrument])
        ingest = LiveIngest(
            lambda event, _received_at: events.append(event),
            exchanges=[case.exchange],
            urls=urls,
            catalog_sources=(),
            poll_sources=(),
            repairs={case.exchange: source},
            backoff=lambda: Backoff(base=0.01, cap=0.05),
        )
        table = _GapTable(ingest)
        await ingest.start()
        try:
            await _until(lambda: len(events) == 1)
            # The venue's history holds the liquidation we saw and one we will miss while down.
            history.add(seen_live)
            # The connection is dropped and refused for 1.2 s; liquidations happen meanwhile
            # (300 and 400 ms in: the gap holds them even if closing the connections took 0.8 s).
            await venue.outage(1.2)
            dropped_at = _now_ms()
            history.add(case.record(2, dropped_at + 300, True))
            history.add(case.record(3, dropped_at + 400, False))  # not one of ours
            await _until(lambda: table.settled(1))
            await _until(lambda: len(events) == 2)

            # A second outage: the window is asked for again, nothing is published twice.
            await venue.outage(0.3)
            await _until(lambda: table.settled(2))
        finally:
            await ingest.stop()
    live, repaired = events
    assert live.id == case.event_id(1).format(ts=live.ts)
    assert repaired.id == case.event_id(2).format(ts=dropped_at + 300)
    assert repaired.ts == dropped_at + 300  # the original time, not the repair's
    assert repaired.size_usd is not None  # sized as the live feed sizes it
    # Sequencing tags an event with its exchange's coverage: the repaired one keeps the venue's.
    assert repaired.exchange == live.exchange == case.exchange
    first, second = sorted(table.gaps.values(), key=lambda g: g.start_ms)
    assert (first.repair, first.repaired_events, first.reason) == ("repaired", 1, "closed")
    assert first.start_ms <= dropped_at + 300 <= (first.end_ms or 0)
    assert (second.repair, second.repaired_events) == ("repaired", 0)
    # Per gap one instrument, one page; HTX pages on until an answer comes back empty, so a
    # window holding a row costs it one page more. The second gap's window (the gap and
    # repair.MARGIN_MS either side) holds the repaired liquidation only when that outage came
    # within the margin of it: not on a loaded machine (3 requests for 4, under CPU burners).
    second_window = plan(second, case.source, _now_ms())
    assert isinstance(second_window, Window)
    second_pages = case.pages if second_window.start_ms <= dropped_at + 300 else 1
    assert len(history.asked) == case.pages + second_pages


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


async def test_a_newest_first_history_is_paged_back_to_the_window_start() -> None:
    history = OkxHistory()
    t = 1_760_000_000_000
    # 250 liquidations in the window (three pages of at most 100, two sharing each boundary's
    # time), and two outside it on either side.
    for n in range(250):
        history.add(("BTC-USDT-SWAP", okx_detail(t + 1_000 + n // 2, sz=str(n + 1))))
    history.add(("BTC-USDT-SWAP", okx_detail(t - 10_000)))
    history.add(("BTC-USDT-SWAP", okx_detail(t + 90_000)))
    catalog = Catalogs().get("okx")  # the bundled one: BTC-USDT-SWAP is 0.01 BTC
    async with FakeRest({OKX_PATH: history}) as rest, httpx.AsyncClient() as client:
        source = replace(okx_repair.SOURCE, base=rest.base, pause=0.0)
        found = await fetch(source, client, "SWAP:BTC-USDT", Window(t, t + 60_000), catalog)
    assert len({e.id for e in found}) == 250  # every one, repeats only at page boundaries
    assert all(t <= (e.ts or 0) <= t + 60_000 for e in found)
    # Each page starts again at the last one's oldest time (inclusive): rows 249..150, then
    # 151..52 (150 and 151 share a time), then the 54 left and the older one: not a full page.
    assert [int(q["after"]) - t for q in history.asked] == [60_001, 1_076, 1_027]


def test_a_window_longer_than_the_endpoint_allows_is_asked_in_parts() -> None:
    hour = 3_600_000
    assert parts(Window(0, hour), 2 * hour) == [Window(0, hour)]
    assert parts(Window(0, 5 * hour), 2 * hour) == [
        Window(0, 2 * hour),
        Window(2 * hour + 1, 4 * hour + 1),
        Window(4 * hour + 2, 5 * hour),
    ]
    assert parts(Window(0, 5 * hour), None) == [Window(0, 5 * hour)]


async def test_an_id_paged_history_is_followed_page_by_page_within_each_part() -> None:
    history = HtxHistory(page=2)
    t = 1_760_000_000_000
    hour = 3_600_000
    # Five orders over five hours (HTX answers at most two hours a query), three sharing a
    # millisecond, and one after the window.
    stamps = [t + 10, t + 10, t + 10, t + 3 * hour, t + 5 * hour - 1, t + 6 * hour]
    for n, ts in enumerate(stamps):
        history.add(htx_row(ts, volume=n + 1))
    gap = Gap(id="htx_linear:1", exchange="htx", connection="htx_linear",
              start_ms=t + 2_000, end_ms=t + 5 * hour - 2_000, reason="silent")  # fmt: skip
    delivered: list[VenueLiquidation] = []
    async with FakeRest({HTX_PATH: history}) as rest, httpx.AsyncClient() as client:
        source = replace(
            htx_repair.SOURCE, base=rest.base, pause=0.0, instruments=lambda _: ["BTC-USDT"]
        )
        settled = await repair(
            gap, source, client, Catalogs().get("htx"), _keep(delivered), t + 6 * hour
        )
    assert [e.ts for e in delivered] == stamps[:5]  # all five in the window, each once
    assert (settled.repair, settled.repaired_events) == ("repaired", 5)
    windows = [(int(q["start_time"]), int(q["end_time"]), q.get("from_id")) for q in history.asked]
    first = (t, t + 2 * hour)
    assert windows == [
        (*first, None),  # rows 0, 1
        (*first, "452001"),  # row 2
        (*first, "452002"),  # empty: the part is done
        (t + 2 * hour + 1, t + 4 * hour + 1, None),  # row 3, then empty
        (t + 2 * hour + 1, t + 4 * hour + 1, "452003"),
        (t + 4 * hour + 2, t + 5 * hour, None),  # row 4, then empty
        (t + 4 * hour + 2, t + 5 * hour, "452004"),
    ]


def _keep(into: list[VenueLiquidation]) -> Callable[[VenueLiquidation], bool]:
    seen: set[str] = set()

    def deliver(event: VenueLiquidation) -> bool:
        if event.id in seen:
            return False
        seen.add(event.id)
        into.append(event)
        return True

    return deliver


async def test_a_gap_with_nothing_to_ask_for_stays_open_without_a_request() -> None:
    gap = Gap(id="okx:1", exchange="okx", connection="okx",
              start_ms=1_000, end_ms=2_000, reason="closed")  # fmt: skip
    async with FakeRest({}) as rest, httpx.AsyncClient() as client:
        source = replace(okx_repair.SOURCE, base=rest.base)
        settled = await repair(gap, source, client, {}, lambda _e: True, 3_000)
    assert (settled.repair, settled.note) == (
        "open",
        "no instruments to ask for: the catalog is empty",
    )
    assert rest.requests == []
