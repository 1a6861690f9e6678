"""The real position sampler against the simulated market's Hyperliquid share: what it
measures is the simulator's true positions of the accounts it sampled, and a sampled account's
liquidation comes out of the stream once."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from purpleflea.engine.measured_map import measured_map
from purpleflea.ingest.backoff import Backoff
from purpleflea.ingest.position_sampler import PositionSampler
from purpleflea.ingest.sampling_schedule import SamplerConfig
from purpleflea.model import VenueLiquidation
from purpleflea.positions import Position
from purpleflea.server.sources import without_held
from purpleflea.sim import SimConfig, SimStep, Simulator
from purpleflea.store.accounts import open_account_store
from purpleflea.venues import hyperliquid, registry
from purpleflea.venues.hyperliquid.simulated import SHARE, SimulatedHyperliquid, address_of

[SAMPLING] = registry.position_sources()
MARKET = "BTC-PERP"


def _open_ids(sim: Simulator, market: str = MARKET) -> set[int]:
    """The ids of ``market``'s open positions now (the simulator's own book)."""
    book, m = sim.book, sim.market_index[market]
    lo, hi = int(book.seg[m]), int(book.seg[m + 1])
    return set(book.cohort_id[lo:hi][book.alive(sim.now_ms)[lo:hi]].tolist())


async def _until(condition: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)


def _sampler(venue: SimulatedHyperliquid, tmp_path: Path) -> PositionSampler:
    # The whole allowance of one IP (520 x 2 + 20 every 30 s + the open-interest poller's 120
    # = 1200 a minute): the 60 polls the test waits for take 6.9 s, not 9 s at 400 a minute.
    return PositionSampler(
        SAMPLING,
        SamplerConfig(budget_per_minute=520, min_interval_ms=60_000, max_interval_ms=60_000),
        coins=("BTC",),
        info_url=venue.info_url,
        ws_url=venue.ws_url,
        accounts=open_account_store(f"sqlite://{tmp_path / 'history.sqlite'}"),
        contexts_interval=30.0,
        backoff=Backoff(base=0.05, cap=0.2),
    )


def _true_sampled(sim: Simulator, polled: set[str]) -> list[Position]:
    """The simulator's true BTC positions of the polled addresses, Hyperliquid's share of
    each, valued at the mark (as ``positionValue`` is)."""
    mark = sim.mark(MARKET)
    return [
        Position(
            account=address_of(sim.config.seed, p.id),
            exchange="hyperliquid",
            symbol="BTC",
            market=MARKET,
            side=p.side,
            size=SHARE * p.quantity,
            entry_price=p.entry_price,
            margin="isolated",
            leverage=p.leverage,
            liquidation_price=p.liquidation_price,
            notional_usd=SHARE * p.quantity * mark,
        )
        for p in sim.truth.positions(MARKET)
        if address_of(sim.config.seed, p.id) in polled
    ]


async def test_the_measured_map_is_the_simulators_true_positions_of_the_sampled_accounts(
    tmp_path: Path,
) -> None:
    sim = Simulator(SimConfig(seed=11, n_markets=3, warmup_ms=600_000))
    steps: Iterator[SimStep] = sim.steps()
    step = next(steps)
    venue = SimulatedHyperliquid(("BTC",))
    async with venue:
        sampler = _sampler(venue, tmp_path)
        task = asyncio.create_task(sampler.run())
        try:
            await _until(lambda: venue.subscribed("BTC"), "the trades subscription")
            # The market stands still from here: the same book is observed (and its holders
            # named in trades) until enough accounts were polled.
            while sampler.stats.polls < 60 or MARKET not in sampler.contexts:
                venue.observe(sim, step)
                await asyncio.sleep(0.05)
            polled = {a for a, held in sampler.schedule.positions.items() if held}
            found = sampler.measured(MARKET, bucket=500)
        finally:
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
    truth = _true_sampled(sim, polled)
    open_interest_usd = SHARE * sim.truth.open_interest(MARKET) * sim.mark(MARKET)
    expected = measured_map(
        MARKET,
        truth,
        mark_price=sim.mark(MARKET),
        open_interest_usd=open_interest_usd,
        ts=found.ts,
        bucket=500,
    )
    assert len(truth) == len(polled) >= 60  # every polled address holds one true position
    assert found.prices == expected.prices
    assert found.long_usd == pytest.approx(expected.long_usd)
    assert found.short_usd == pytest.approx(expected.short_usd)
    assert sum(found.long_usd) > 0
    assert sum(found.short_usd) > 0
    assert found.positions == len(truth)
    assert found.open_interest_usd == pytest.approx(open_interest_usd)
    assert 0 < found.coverage <= 1
    assert found.coverage == pytest.approx(expected.coverage)
    assert (venue.rejected, venue.violations) == (0, [])


async def test_the_venue_holds_exactly_the_simulators_open_positions_step_after_step() -> None:
    # The venue takes only the positions that came and drops those that left (building all of
    # BTC's anew on every change was most of a demo step's cost): the held set must still be
    # the simulator's open positions after every step, each at its own address.
    sim = Simulator(SimConfig(seed=5, n_markets=3, warmup_ms=600_000))
    venue = SimulatedHyperliquid(("BTC",))
    seen: set[int] = set()
    checked = 0
    async with venue:
        for i, step in enumerate(sim.run(300_000)):
            venue.observe(sim, step)
            held = venue.holders("BTC")
            seen |= held.keys()
            if i % 50 == 0:  # the truth's positions are the costly part: every 50th step
                assert held.keys() == {p.id for p in sim.truth.positions(MARKET)}
                assert all(address == address_of(5, pid) for pid, address in held.items())
                # Their turn to trade, kept in address order as they come and go.
                assert [h.address for h in venue._in_turn["BTC"]] == sorted(held.values())
                checked += 1
    assert held.keys() == {p.id for p in sim.truth.positions(MARKET)}
    assert checked >= 20
    assert len(seen - held.keys()) > 10  # positions left the book while watched


async def test_addresses_are_stable_across_a_restart_of_the_market() -> None:
    sim = Simulator(SimConfig(seed=4, n_markets=3, warmup_ms=600_000))
    *_, step = sim.run(60_000)  # one whole block: the state is captured between blocks
    before = SimulatedHyperliquid(("BTC",))
    async with before:
        before.observe(sim, step)
    # The market stopped and resumed an hour later (a new epoch), as `serve` does on restart.
    later = replace(sim.config, start_ms=sim.now_ms + 3_600_000, epoch=1)
    resumed = Simulator.from_state(later, sim.capture_state())
    after = SimulatedHyperliquid(("BTC",))
    async with after:
        after.observe(resumed, next(resumed.steps()))
    # holders() builds its dict on each call: take each side's once.
    held, held_after = before.holders("BTC"), after.holders("BTC")
    kept = held.keys() & held_after.keys()
    assert len(kept) > 100
    assert {pid: held[pid] for pid in kept} == {pid: held_after[pid] for pid in kept}
    assert len(set(held.values())) == len(held)  # one address a position


class _Capturing(SimulatedHyperliquid):
    """Records the liquidation fills it would send to each user's subscribers."""

    def __init__(self) -> None:
        super().__init__(("BTC",))
        self.sent: list[tuple[str, dict[str, object]]] = []
        self.traded: list[tuple[str, str, float, float, int]] = []

    async def user_fills(self, user: str, fills: list[dict[str, object]]) -> None:
        self.sent.extend((user, fill) for fill in fills)

    async def trades(self, coin: str, trades: Sequence[tuple[str, str, float, float, int]]) -> None:
        self.traded.extend(trades)


@dataclass(frozen=True)
class _Window:
    """What the venue had sent once it had observed a window's steps: what a venue that saw
    only those steps sends, as a step's fills and trades follow from the steps observed so far
    and never from later ones."""

    sent: list[tuple[str, dict[str, object]]]
    traded: list[tuple[str, str, float, float, int]]
    held_share: Callable[[str], float]


@dataclass(frozen=True)
class _DemoRun:
    """35 minutes of the demo market (seed 11, three markets), observed by one venue for the
    first 30, and what it had sent at the end of each window the tests read:
    ``observed[20]`` after its steps up to minute 20, ``observed[30]`` up to minute 30."""

    sim: Simulator
    steps: tuple[SimStep, ...]
    observed: dict[int, _Window]
    #: Per step (by ts): the BTC positions its events name that were still open after it,
    #: whose events are cross-margin accounts' closes of part of them (sim.accounts).
    still_open: dict[int, frozenset[int]]

    def account_close(self, step: SimStep, pid: int) -> bool:
        return pid in self.still_open[step.ts]

    def until(self, minutes: int) -> Iterator[SimStep]:
        """The steps a run of only the first ``minutes`` would have yielded."""
        end = self.sim.config.start_ms + minutes * 60_000
        return (step for step in self.steps if step.ts <= end)


async def _run_demo(minutes: int, windows: tuple[int, ...]) -> _DemoRun:
    sim = Simulator(SimConfig.demo(seed=11, n_markets=3, warmup_ms=600_000))
    # One venue for every window (taking the book anew after each step is most of the run's
    # cost): a window's view is what it had sent by the window's last step.
    venue = _Capturing()
    ends = {sim.config.start_ms + window * 60_000: window for window in windows}
    observed: dict[int, _Window] = {}
    steps: list[SimStep] = []
    still_open: dict[int, frozenset[int]] = {}
    for step in sim.run(minutes * 60_000):
        if step.ts <= max(ends):
            venue.observe(sim, step)
        steps.append(step)
        named = {
            int(e.liquidated_user.removeprefix("cohort-"))
            for e in step.liquidations
            if e.market == MARKET and e.liquidated_user
        }
        still_open[step.ts] = frozenset(named & _open_ids(sim)) if named else frozenset()
        await asyncio.sleep(0)  # the venue publishes in tasks of its own
        if step.ts in ends:
            await asyncio.sleep(0.05)  # every task of the window's steps has published
            window = _Window(list(venue.sent), list(venue.traded), venue.held_share)
            observed[ends[step.ts]] = window
    assert observed.keys() == set(windows), f"windows {windows} end between steps"
    return _DemoRun(sim, tuple(steps), observed, still_open)


@pytest.fixture(scope="module")
def demo_run() -> _DemoRun:
    """The demo market the three liquidation tests read, simulated and observed once (each
    had run the same seed and config itself; the simulator is deterministic)."""
    return asyncio.run(_run_demo(35, (20, 30)))


def test_a_liquidated_true_position_is_one_liquidation_fill_of_its_holder(
    demo_run: _DemoRun,
) -> None:
    sim = demo_run.sim
    # Observed for 30 minutes; the simulator's events for 5 more, as one liquidation's events
    # are spread over up to a minute after it.
    venue = demo_run.observed[30]
    liquidated: dict[int, list[VenueLiquidation]] = {}
    accounts: set[int] = set()  # positions an account's close took part of
    left: dict[int, int] = {}  # positions liquidated (gone from the book): when
    for step in demo_run.until(35):
        for event in step.liquidations:
            if event.market == MARKET and event.liquidated_user:
                pid = int(event.liquidated_user.removeprefix("cohort-"))
                liquidated.setdefault(pid, []).append(event)
                if demo_run.account_close(step, pid):
                    accounts.add(pid)
                else:
                    left.setdefault(pid, event.ts or step.ts)
    # A position a cross-margin account's close took part of (its event names the still
    # open position, sim.accounts) is not liquidated; one liquidated later has that part in
    # its holder's share (the venue holds a share of the position as it first saw it).
    liquidated = {pid: events for pid, events in liquidated.items() if pid in left}
    assert accounts, "some account closes took part of BTC positions"
    holders = {address_of(sim.config.seed, pid): pid for pid in liquidated}
    assert len(venue.sent) >= 5, "a volatile half hour liquidates some BTC positions"
    assert len({user for user, _ in venue.sent}) == len(venue.sent)  # each once
    for user, fill in venue.sent:
        pid = holders[user]  # the holder of a position the simulator liquidated
        events = liquidated[pid]
        [event] = hyperliquid.normalize_user_events(
            json.dumps({"channel": "user", "data": {"fills": [fill]}}), owner=user
        )
        assert event.side == events[0].side
        assert event.liquidated_user == user
        assert event.quantity == pytest.approx(SHARE * sum(e.quantity for e in events))
    # Every BTC position the simulator liquidated while observed was told (the venue held a
    # share of each).
    observed = {p for p, ts in left.items() if ts <= sim.config.start_ms + 30 * 60_000}
    assert len(venue.sent) == len(observed)


def test_the_stream_carries_each_liquidated_positions_hyperliquid_part_once(
    demo_run: _DemoRun,
) -> None:
    """What `serve` publishes on the simulated market with its Hyperliquid share running: the
    simulator's own events less the share held on the local venue, and that venue's
    liquidation fills. Per liquidated BTC position: one `hyperliquid` event of the share, the
    other venues' events of the rest, the whole once."""
    sim = demo_run.sim
    venue = demo_run.observed[20]  # observed for 20 minutes, its events read for 25
    whole: dict[int, float] = {}
    direct: dict[int, float] = {}
    first: dict[int, int] = {}
    left: set[int] = set()
    cutoff = sim.config.start_ms + 20 * 60_000
    for step in demo_run.until(25):
        for event in step.liquidations:
            published = without_held(event, (venue.held_share,))
            assert event.market != MARKET or published is not None
            assert published is None or published.exchange != "hyperliquid"
            if event.market != MARKET or not event.liquidated_user:
                assert event.market == MARKET or published == event  # other markets untouched
                continue
            assert published is not None
            assert event.quantity
            assert published.quantity
            pid = int(event.liquidated_user.removeprefix("cohort-"))
            if not demo_run.account_close(step, pid):
                left.add(pid)
            first.setdefault(pid, event.ts or step.ts)
            whole[pid] = whole.get(pid, 0.0) + event.quantity
            direct[pid] = direct.get(pid, 0.0) + published.quantity
    # One liquidation's events spread over up to a minute: the positions liquidated while
    # observed, with all their events.
    # Positions an account's close took only part of (sim.accounts) are not liquidated.
    whole = {
        pid: quantity for pid, quantity in whole.items() if first[pid] <= cutoff and pid in left
    }
    sampled: dict[int, list[float]] = {}
    holders = {address_of(sim.config.seed, pid): pid for pid in whole}
    for user, fill in venue.sent:
        [event] = hyperliquid.normalize_user_events(
            json.dumps({"channel": "user", "data": {"fills": [fill]}}), owner=user
        )
        assert event.exchange == "hyperliquid"
        assert event.quantity
        sampled.setdefault(holders[user], []).append(event.quantity)
    assert len(whole) >= 5, "a volatile 20 minutes liquidates some BTC positions"
    assert sampled.keys() == whole.keys()
    for pid, quantity in whole.items():
        [part] = sampled[pid]  # the Hyperliquid part once
        assert part == pytest.approx(SHARE * quantity)
        assert direct[pid] + part == pytest.approx(quantity)  # and the whole once


def test_a_liquidation_is_a_public_trade_at_its_liquidation_price(demo_run: _DemoRun) -> None:
    """The simulator's step marks stop short of a liquidated position's price; the venue's
    liquidation order trades there, so the sampler's trade stream sees the price reached."""
    venue = demo_run.observed[20]  # observed for 20 minutes
    assert len(venue.sent) >= 5
    by_holder = {(t[0], t[3]) for t in venue.traded} | {(t[1], t[3]) for t in venue.traded}
    for user, fill in venue.sent:
        assert (user, float(str(fill["px"]))) in by_holder
        [trade] = [t for t in venue.traded if user in t[:2] and t[3] == float(str(fill["px"]))]
        # the liquidation order sells a long (the holder the seller) and buys back a short
        assert trade[1 if fill["side"] == "A" else 0] == user
        assert trade[2] == pytest.approx(float(str(fill["sz"])))
