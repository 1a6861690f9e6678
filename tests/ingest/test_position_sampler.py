"""The real position sampler against a fake Hyperliquid speaking the documented protocol:
discovery from trades, positions within the rate limit, the measured map equal to the true
positions of the sampled accounts, discovery kept across a restart, reconnects."""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import json
import logging
import random
import time
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path

import httpx
import pytest

from purpleflea.engine.measured_map import measured_map
from purpleflea.ingest import position_sampler
from purpleflea.ingest.backoff import Backoff
from purpleflea.ingest.position_sampler import PositionSampler
from purpleflea.ingest.sampling_schedule import SamplerConfig, Schedule, distance_to_liquidation
from purpleflea.model import VenueLiquidation
from purpleflea.positions import MarketContext, Position
from purpleflea.store.accounts import open_account_store
from purpleflea.venues import registry
from tests.fakes.hyperliquid import WEIGHT_PER_MINUTE, FakeHyperliquid, HeldPosition

MARK, OPEN_INTEREST = 100_000.0, 200.0
[SAMPLING] = registry.position_sources()


def _address(i: int) -> str:
    return f"0x{i:040x}"


def _book(accounts: int, seed: int = 7) -> dict[str, list[HeldPosition]]:
    rng = random.Random(seed)
    book = {}
    for i in range(accounts):
        size = rng.uniform(0.1, 5.0) * rng.choice((1, -1))
        leverage = rng.choice((2, 5, 10, 20))
        liquidation = MARK * (1 - 0.9 / leverage) if size > 0 else MARK * (1 + 0.9 / leverage)
        book[_address(i)] = [HeldPosition("BTC", size, MARK, liquidation, leverage)]
    book[_address(accounts)] = [HeldPosition("BTC", 1.0, MARK, None, 1)]  # cannot be liquidated
    return book


def _truth(book: dict[str, list[HeldPosition]]) -> list[Position]:
    return [
        Position(
            account=account,
            exchange="hyperliquid",
            symbol=p.coin,
            market=f"{p.coin}-PERP",
            side="long" if p.size > 0 else "short",
            size=abs(p.size),
            entry_price=p.entry,
            margin="cross",
            leverage=p.leverage,
            liquidation_price=p.liquidation,
            notional_usd=abs(p.size) * MARK,
        )
        for account, held in book.items()
        for p in held
    ]


async def _until(condition: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


@pytest.fixture
async def fake() -> AsyncIterator[FakeHyperliquid]:
    async with FakeHyperliquid(markets={"BTC": (MARK, OPEN_INTEREST)}) as server:
        yield server


def _sampler(fake: FakeHyperliquid, tmp_path: Path, budget: int = 500) -> PositionSampler:
    return PositionSampler(
        SAMPLING,
        SamplerConfig(budget_per_minute=budget),
        coins=("BTC",),
        info_url=fake.info_url,
        ws_url=fake.ws_url,
        accounts=open_account_store(f"sqlite://{tmp_path / 'history.sqlite'}"),
        backoff=Backoff(base=0.05, cap=0.2),
    )


async def test_the_measured_map_is_the_true_positions_of_the_sampled_accounts(
    fake: FakeHyperliquid, tmp_path: Path
) -> None:
    fake.positions = _book(30)
    sampler = _sampler(fake, tmp_path)
    task = asyncio.create_task(sampler.run())
    try:
        await _until(lambda: fake.subscribed("BTC"), "the trades subscription")
        accounts = list(fake.positions)
        for buyer, seller in zip(accounts[::2], accounts[1::2], strict=False):
            await fake.trade("BTC", buyer, seller)
        await fake.trade("BTC", accounts[-1], _address(999))  # an account with no position
        await _until(lambda: sampler.stats.polls >= len(accounts) + 1, "every account polled")
        await _until(lambda: "BTC-PERP" in sampler.contexts, "marks and open interest")
        found = sampler.measured("BTC-PERP", bucket=500)
        expected = measured_map(
            "BTC-PERP",
            _truth(fake.positions),
            mark_price=MARK,
            open_interest_usd=MARK * OPEN_INTEREST,
            ts=found.ts,
            bucket=500,
        )
        assert found.prices == expected.prices
        assert found.long_usd == pytest.approx(expected.long_usd)
        assert found.short_usd == pytest.approx(expected.short_usd)
        assert sum(found.long_usd) > 0
        assert sum(found.short_usd) > 0
        assert 0 < found.coverage <= 1
        assert found.coverage == pytest.approx(expected.coverage)
        assert found.accounts == len(accounts)
        assert (fake.rejected, fake.violations) == (0, [])
        store = open_account_store(f"sqlite://{tmp_path / 'history.sqlite'}")
        deadline = asyncio.get_running_loop().time() + 30
        while len(await store.recent("hyperliquid", 100)) < len(accounts) + 1:
            assert asyncio.get_running_loop().time() < deadline, "accounts never saved"
            await asyncio.sleep(0.05)
        await store.close()
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    restarted = _sampler(fake, tmp_path)
    assert await restarted.restore() == len(accounts) + 1  # the restart is not blind
    assert restarted.schedule.next(restarted.clock()) is not None  # and due at once


async def test_polls_stay_within_the_budget_against_the_venues_limit(
    fake: FakeHyperliquid, tmp_path: Path
) -> None:
    fake.positions = _book(200)
    # 520 x 2 + 20 every 30 s + the open-interest poller's 120 a minute = 1200: the whole
    # documented allowance of one IP.
    sampler = _sampler(fake, tmp_path, budget=520)
    task = asyncio.create_task(sampler.run())
    try:
        await _until(lambda: fake.subscribed("BTC"), "the trades subscription")
        accounts = list(fake.positions)
        for buyer, seller in zip(accounts[::2], accounts[1::2], strict=False):
            await fake.trade("BTC", buyer, seller)
        await _until(lambda: sampler.stats.polls >= 30, "30 polls")
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    times = [t for t, kind, _ in fake.requests if kind == "clearinghouseState"]
    # 520 a minute: 116 ms apart when sent; arrival jitter aside, no 2 s holds more than 18.
    for i, start in enumerate(times):
        assert sum(1 for t in times[i:] if t < start + 2.0) <= 20
    assert (len(times) - 1) / (times[-1] - times[0]) <= 520 / 60 * 1.1
    assert fake.rejected == 0


async def test_builder_dex_coins_are_sampled_on_their_dex_and_never_merged(
    tmp_path: Path,
) -> None:
    # HIP-3: a builder dex's positions and contexts are answered only to requests naming its
    # dex (Hyperliquid docs, info endpoint > Perpetuals: "dex ... Defaults to the empty
    # string which represents the first perp dex"; python SDK user_state(address, dex)), and
    # its coins are "dex:COIN" (the recorded userFills fill of xyz:CRWV, EXCHANGES.md). A
    # builder dex's BTC is BTC-PERP by name, but another market: its own price, book and
    # open interest, none of which may be taken for the first dex's.
    tsla, builder_btc = ("xyz:TSLA", (400.0, 1_000.0)), ("hyna:BTC", (MARK * 1.05, 50.0))
    main, other = _address(1), _address(2)
    book = {
        main: [
            HeldPosition("BTC", 2.0, MARK, MARK * 0.9),
            HeldPosition("xyz:TSLA", -10.0, 400.0, 440.0),
        ],
        other: [HeldPosition("hyna:BTC", 3.0, MARK, MARK * 0.95)],
    }
    markets = {"BTC": (MARK, OPEN_INTEREST), tsla[0]: tsla[1], builder_btc[0]: builder_btc[1]}
    async with FakeHyperliquid(book, markets) as fake:
        sampler = PositionSampler(
            SAMPLING,
            SamplerConfig(budget_per_minute=480),  # 3 dexes' marks: 480 x 2 + 120 + 120
            coins=("hyna:BTC", "xyz:TSLA", "BTC"),
            info_url=fake.info_url,
            ws_url=fake.ws_url,
            backoff=Backoff(base=0.05, cap=0.2),
        )
        assert sampler.scopes == ("", "hyna", "xyz")
        task = asyncio.create_task(sampler.run())
        try:
            await _until(lambda: all(map(fake.subscribed, sampler.coins)), "the trades")
            await fake.trade("xyz:TSLA", main, _address(9))
            await fake.trade("hyna:BTC", other, _address(9), price=MARK * 0.5)  # its own wick
            await _until(lambda: sampler.stats.polls >= 3, "the accounts polled")
            await _until(lambda: "TSLA-PERP" in sampler.contexts, "the xyz dex's contexts")
            btc, stock = sampler.measured("BTC-PERP"), sampler.measured("TSLA-PERP")
        finally:
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
        asked = {(kind, user) for _, kind, user in fake.requests}
        assert (fake.rejected, fake.violations) == (0, [])
    assert asked >= {("clearinghouseState", main), ("metaAndAssetCtxs", None)}
    assert sampler.contexts["BTC-PERP"].mark_price == MARK  # the first dex's, not hyna's
    assert sampler.contexts["TSLA-PERP"].open_interest == 1_000.0
    assert (btc.accounts, btc.positions, btc.sampled_usd) == (1, 1, pytest.approx(2.0 * MARK))
    assert (stock.accounts, stock.sampled_usd) == (1, pytest.approx(10.0 * 400.0))
    assert sampler.extremes.between("BTC-PERP", 0, sampler.clock()) is None  # no hyna wick


class _FailingDex(FakeHyperliquid):
    """Answers HTTP 500 to every request naming the dex ``bad``."""

    def _answer(self, body: bytes) -> tuple[bytes, bytes]:
        if json.loads(body).get("dex") == "bad":
            return b"500 Internal Server Error", b"null"
        return super()._answer(body)


async def test_a_failing_builder_dex_leaves_the_marks_of_the_dexes_before_it() -> None:
    async with _FailingDex(markets={"BTC": (MARK, OPEN_INTEREST)}) as fake:
        sampler = PositionSampler(
            SAMPLING, coins=("bad:X", "BTC"), info_url=fake.info_url, ws_url=fake.ws_url
        )
        async with httpx.AsyncClient() as client:
            sampler.client = client
            with pytest.raises(httpx.HTTPStatusError):
                await sampler.poll_contexts()
    assert sampler.scopes == ("", "bad")
    assert sampler.contexts["BTC-PERP"].mark_price == MARK


class _LateMarks(FakeHyperliquid):
    """Refuses the first metaAndAssetCtxs request (HTTP 500), as a venue still starting."""

    refused = False

    def _answer(self, body: bytes) -> tuple[bytes, bytes]:
        if json.loads(body).get("type") == "metaAndAssetCtxs" and not self.refused:
            self.refused = True
            return b"500 Internal Server Error", b"null"
        return super()._answer(body)


async def test_with_builder_dexes_accounts_wait_for_the_marks_that_say_whose_market(
    tmp_path: Path,
) -> None:
    # Before any contexts, a builder dex's position cannot be told from another dex's market
    # of the same name, so it is left out; a restored account polled then would count none of
    # its xyz positions until its next poll, minutes later for an account that seems empty.
    account = _address(1)
    url = f"sqlite://{tmp_path / 'history.sqlite'}"
    store = open_account_store(url)
    await store.add("hyperliquid", [account], 0)
    await store.close()
    book = {account: [HeldPosition("xyz:TSLA", -10.0, 400.0, 440.0)]}
    async with _LateMarks(book, {"BTC": (MARK, OPEN_INTEREST), "xyz:TSLA": (400.0, 1e3)}) as fake:
        sampler = PositionSampler(
            SAMPLING,
            SamplerConfig(budget_per_minute=100),
            coins=("BTC", "xyz:TSLA"),
            info_url=fake.info_url,
            ws_url=fake.ws_url,
            accounts=open_account_store(url),
            backoff=Backoff(base=0.05, cap=0.2),
        )
        task = asyncio.create_task(sampler.run())
        try:
            await _until(lambda: sampler.stats.polls >= 1, "the restored account polled")
        finally:
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
    [position] = sampler.schedule.positions[account]
    assert (position.market, position.side, position.size) == ("TSLA-PERP", "short", 10.0)


def test_the_budget_leaves_the_open_interest_poller_its_share_of_the_ip_allowance() -> None:
    # Hyperliquid's 1200 weight a minute is per IP and shared by every REST request (docs,
    # "Rate limits"): the tracker's open-interest poller asks perpDexs and each perp dex's
    # metaAndAssetCtxs (weight 20 each), one request every 10 s: 120 a minute. With only its
    # old 20 reserved, 570 polls x 2 + 40 for the sampler's marks + 120 came to 1300.
    assert SAMPLING.reserved_weight_per_minute == 120
    assert 520 * SAMPLING.account_weight + 2 * SAMPLING.contexts_weight + 120 == WEIGHT_PER_MINUTE
    with pytest.raises(ValueError, match="more than the venue allows"):
        PositionSampler(SAMPLING, SamplerConfig(budget_per_minute=521))
    PositionSampler(SAMPLING, SamplerConfig(budget_per_minute=520))
    # Each builder dex sampled adds its marks (20 every 30 s) to the reserve.
    with pytest.raises(ValueError, match="more than the venue allows"):
        PositionSampler(SAMPLING, SamplerConfig(budget_per_minute=520), coins=("BTC", "xyz:TSLA"))
    PositionSampler(SAMPLING, SamplerConfig(budget_per_minute=500), coins=("BTC", "xyz:TSLA"))


async def test_discovery_reconnects_and_resubscribes(fake: FakeHyperliquid, tmp_path: Path) -> None:
    fake.positions = _book(4)
    sampler = _sampler(fake, tmp_path)
    task = asyncio.create_task(sampler.run())
    try:
        await _until(lambda: fake.subscribed("BTC"), "the trades subscription")
        await fake.trade("BTC", _address(0), _address(1))
        await _until(lambda: sampler.stats.discovered == 2, "two accounts")
        await fake.drop()
        await _until(lambda: sampler.stats.discovery.connects >= 2, "a new connection")
        await _until(lambda: fake.subscribed("BTC"), "the subscription again")
        await fake.trade("BTC", _address(2), _address(3))
        await _until(lambda: sampler.stats.discovered == 4, "four accounts")
        assert sampler.stats.discovery.reconnects >= 1
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


async def test_a_sampled_account_liquidated_between_polls_is_published_once(
    fake: FakeHyperliquid, tmp_path: Path
) -> None:
    victim, other = _address(1), _address(2)
    fake.positions = {victim: [HeldPosition("BTC", 2.0, MARK, 96_000.0, 20, "isolated")]}
    published: list[VenueLiquidation] = []
    sampler = _sampler(fake, tmp_path)
    sampler.config = SamplerConfig(budget_per_minute=500, min_interval_ms=200, max_interval_ms=400)
    sampler.schedule = Schedule(sampler.config)
    sampler.sink = lambda event, received_at: published.append(event)
    sampler.watch_interval = 3600.0  # nobody watched: the positions tell
    task = asyncio.create_task(sampler.run())
    try:
        await _until(lambda: fake.subscribed("BTC"), "the trades subscription")
        await fake.trade("BTC", victim, other)
        await _until(lambda: sampler.stats.polls >= 2, "the first polls")
        await fake.trade("BTC", other, _address(3), price=95_500.0)  # through its price
        fake.positions[victim] = []  # and the exchange liquidated it
        await _until(lambda: len(published) == 1, "the liquidation")
        polls = sampler.stats.polls
        await _until(lambda: sampler.stats.polls >= polls + 4, "more polls")
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    [event] = published  # detected once, however often it is polled after
    assert (event.exchange, event.side, event.price, event.quantity) == (
        "hyperliquid",
        "long",
        96_000.0,
        2.0,
    )
    assert event.liquidated_user == victim


async def test_the_riskiest_accounts_are_watched_and_their_liquidation_fills_published_once(
    fake: FakeHyperliquid, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="purpleflea")
    # More than one IP may watch: 10 users, and 10 connections of which the trade stream holds
    # one (Hyperliquid's "Rate limits and user limits"), so 9 are watched.
    near = [_address(i) for i in range(12)]
    fake.positions = {
        a: [HeldPosition("BTC", 1.0, MARK, MARK * (0.99 - 0.001 * i), 50)]
        for i, a in enumerate(near)
    }
    fake.positions[_address(50)] = [HeldPosition("BTC", 1.0, MARK, MARK * 0.5, 2)]
    published: list[VenueLiquidation] = []
    sampler = _sampler(fake, tmp_path)
    sampler.config = SamplerConfig(budget_per_minute=500, min_interval_ms=200, max_interval_ms=400)
    sampler.schedule = Schedule(sampler.config)
    sampler.sink = lambda event, received_at: published.append(event)
    sampler.watch_interval = 0.1
    task = asyncio.create_task(sampler.run())
    try:
        await _until(lambda: fake.subscribed("BTC"), "the trades subscription")
        for buyer, seller in zip(
            list(fake.positions)[::2], list(fake.positions)[1::2], strict=False
        ):
            await fake.trade("BTC", buyer, seller)
        await fake.trade("BTC", _address(50), near[0])
        await _until(lambda: all(fake.watched(a) for a in near[:9]), "the 9 nearest watched")
        assert not fake.watched(near[9])
        assert not fake.watched(_address(50))
        assert len(sampler.watched) == 9
        fill = {
            "coin": "BTC", "px": "98900.0", "sz": "1.0", "side": "A", "time": 1_760_000_000_000,
            "dir": "Close Long", "hash": "0xfeed", "tid": 7,
            "liquidation": {"liquidatedUser": near[0], "markPx": "98900", "method": "market"},
        }  # fmt: skip
        await fake.user_fills(near[0], [fill])
        await fake.user_fills(near[0], [fill])  # sent again (a resend): not published again
        await _until(lambda: len(published) >= 1, "the liquidation fill")
        await fake.trade("BTC", near[0], _address(60), price=98_000.0)
        fake.positions[near[0]] = []  # gone at its price: the watched fill already told it
        polls = sampler.stats.polls
        await _until(lambda: sampler.stats.polls >= polls + 30, "more polls")
        await _until(lambda: fake.watched(near[9]), "the next riskiest watched instead")
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    [event] = published
    assert (event.side, event.price, event.liquidated_user) == ("long", 98_900.0, near[0])
    assert fake.violations == []
    # One line says what is watched; the watched accounts' own connects stay at debug level
    # (a served demo printed ~40 of them under its banner).
    loud = [r.getMessage() for r in caplog.records if r.levelno >= logging.INFO]
    assert sum("accounts nearest liquidation" in m for m in loud) == 1
    assert not [m for m in loud if "_user_" in m and "connected to" in m]
    quiet = [r.getMessage() for r in caplog.records if r.levelno == logging.DEBUG]
    assert sum("_user_" in m and "connected to" in m for m in quiet) >= 10


async def test_watched_accounts_churn_within_hyperliquid_s_new_connections_a_minute(
    fake: FakeHyperliquid, tmp_path: Path
) -> None:
    """Hyperliquid allows 30 new websocket connections a minute per IP ("Rate limits and user
    limits"); the riskiest accounts change every few seconds as marks move. Each change may
    not open a connection per new account: the sampler opens at most 30 - 10 a minute (10
    held connections may each reconnect once) and keeps watching the old ones meanwhile."""
    now = [1_000_000]
    sampler = _sampler(fake, tmp_path)
    sampler.clock = lambda: now[0]
    sampler.sink = lambda event, received_at: None
    accounts = [_address(i) for i in range(60)]
    sampler.schedule.marks["BTC-PERP"] = MARK
    try:
        for round_ in range(6):  # every round a new 9 are the nearest to liquidation
            for i, account in enumerate(accounts):
                nearest = round_ * 9 <= i < round_ * 9 + 9
                liquidation = MARK * (0.99 if nearest else 0.5)
                [held] = _truth({account: [HeldPosition("BTC", 1.0, MARK, liquidation, 50)]})
                sampler.schedule.positions[account] = [held]
            await sampler.rewatch()
            assert len(sampler.watched) == 9
            now[0] += 5_000  # five seconds a round: all six inside one minute
        assert sampler.new_connections_left() == 0  # 9 + 9 + 2 opened: 20 this minute
        assert len(set(sampler.watched) & set(accounts[:18])) == 7  # kept until replaced
        await _until(lambda: len(fake.watched_users()) == 9, "the watched connections")
        now[0] += 60_000  # a minute on: the rest may open
        await sampler.rewatch()
        assert set(sampler.watched) == set(accounts[45:54])
        await _until(lambda: fake.watched_users() == set(accounts[45:54]), "the latest 9")
    finally:
        for task in sampler.watched.values():
            task.cancel()
        for task in sampler.watched.values():
            with contextlib.suppress(asyncio.CancelledError):
                await task
    assert fake.violations == []


async def test_a_429_pauses_every_request_of_the_sampler(
    fake: FakeHyperliquid, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A 2 s pause instead of the 5 s one, and a refused account asked again after 0.2 s instead
    # of 10 s: a sampler that held back only the refused requests keeps asking and is answered
    # within 0.2 s of its last refusal (0.12 s measured), well inside the pause.
    assert position_sampler.PAUSE_WITHOUT_RETRY_AFTER_S == 5.0
    monkeypatch.setattr(position_sampler, "PAUSE_WITHOUT_RETRY_AFTER_S", 2.0)
    fake.positions = _book(4)
    fake._spent.append((time.monotonic(), WEIGHT_PER_MINUTE))  # the IP's minute is spent
    sampler = _sampler(fake, tmp_path)
    sampler.config = SamplerConfig(budget_per_minute=500, min_interval_ms=200, max_interval_ms=400)
    sampler.schedule = Schedule(sampler.config)
    task = asyncio.create_task(sampler.run())
    try:
        await _until(lambda: fake.subscribed("BTC"), "the trades subscription")
        await fake.trade("BTC", _address(0), _address(1))
        await fake.trade("BTC", _address(2), _address(3))
        await _until(lambda: fake.rejected >= 2, "refused requests")
        await _until(lambda: sampler.stats.rate_limited >= 1, "the 429 counted")
        # A request already on its way when the 429 came back is refused too, not paused: let
        # those arrive before the venue answers again, so the first answered request is one
        # the sampler sent after it knew of the 429.
        await asyncio.sleep(0.5)
        fake._spent.clear()  # the venue would answer again now; the sampler must still wait
        await _until(lambda: len(fake.requests) > fake.rejected, "a request after the pause")
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    refused_at = fake.requests[fake.rejected - 1][0]
    assert fake.requests[fake.rejected][0] - refused_at >= 1.8  # no Retry-After: the pause


def _position(account: str, side: str, liquidation: float | None, size: float = 1.0) -> Position:
    return Position(
        account=account,
        exchange="hyperliquid",
        symbol="BTC",
        market="BTC-PERP",
        side="long" if side == "long" else "short",
        size=size,
        entry_price=MARK,
        margin="isolated",
        leverage=10,
        liquidation_price=liquidation,
        notional_usd=size * MARK,
    )


def _offline_sampler(now: list[int]) -> PositionSampler:
    sampler = PositionSampler(
        SAMPLING,
        SamplerConfig(min_interval_ms=10_000, max_interval_ms=600_000),
        coins=("BTC",),
        clock=lambda: now[0],
    )
    sampler.contexts["BTC-PERP"] = MarketContext(
        market="BTC-PERP", mark_price=MARK, open_interest=2.0, open_interest_usd=MARK * 2.0
    )
    return sampler


def test_a_position_the_market_traded_through_leaves_the_map_at_once() -> None:
    now = [1_000_000]
    sampler = _offline_sampler(now)
    sampler.extremes.add("BTC-PERP", now[0] - 5_000, 89_000.0)  # before the poll: not a pass
    sampler.schedule.polled("0xa", [_position("0xa", "long", 90_000.0)], now[0])
    sampler.schedule.polled("0xb", [_position("0xb", "short", 110_000.0)], now[0])
    sampler.schedule.polled("0xc", [_position("0xc", "long", None)], now[0])
    assert sampler.measured("BTC-PERP").positions == 3
    now[0] += 3_000
    sampler.extremes.add("BTC-PERP", now[0], 89_999.0)  # the long's liquidation price passed
    found = sampler.measured("BTC-PERP")
    assert {p.account for p in sampler.counted("BTC-PERP")} == {"0xb", "0xc"}
    assert found.positions == 2
    assert found.sampled_usd == pytest.approx(2 * MARK)
    # ... and its account is the next to poll: the poll that tells its liquidation.
    assert distance_to_liquidation(sampler.schedule.positions["0xa"], {"BTC-PERP": 89_999.0}) == 0.0


def test_a_mark_beyond_the_liquidation_price_drops_only_positions_polled_before_it() -> None:
    now = [1_000_000]
    sampler = _offline_sampler(now)
    sampler.schedule.polled("0xa", [_position("0xa", "short", 101_000.0)], now[0])
    sampler._contexts_ms = now[0] - 1  # marks polled before the position: no verdict
    sampler.contexts["BTC-PERP"] = MarketContext(
        market="BTC-PERP", mark_price=102_000.0, open_interest=2.0, open_interest_usd=MARK * 2.0
    )
    assert sampler.measured("BTC-PERP").positions == 1
    sampler._contexts_ms = now[0] + 1  # marks polled after it, beyond its price: gone
    assert sampler.measured("BTC-PERP").positions == 0


def test_positions_not_repolled_within_the_age_limit_stop_counting() -> None:
    now = [10_000_000]
    sampler = _offline_sampler(now)
    assert sampler.config.age_limit_ms == sampler.config.max_interval_ms == 600_000
    sampler.schedule.polled("0xold", [_position("0xold", "long", 80_000.0)], now[0])
    now[0] += 300_000
    sampler.schedule.polled("0xnew", [_position("0xnew", "long", 80_000.0)], now[0])
    assert sampler.measured("BTC-PERP").positions == 2
    now[0] += 300_001
    assert {p.account for p in sampler.counted("BTC-PERP")} == {"0xnew"}
    with pytest.raises(ValueError, match="max_age_ms"):
        SamplerConfig(min_interval_ms=10_000, max_age_ms=5_000)
    assert SamplerConfig(max_age_ms=1_200_000).age_limit_ms == 1_200_000


def test_coverage_past_one_is_capped_but_its_raw_ratio_is_reported() -> None:
    now = [1_000_000]
    sampler = _offline_sampler(now)  # open interest 2 BTC a side: 4 BTC both sides
    for i in range(5):
        account = _address(i)
        sampler.schedule.polled(account, [_position(account, "long", 80_000.0)], now[0])
    found = sampler.measured("BTC-PERP")
    assert found.coverage == 1.0
    assert found.coverage_uncapped == pytest.approx(5 / 4)


def test_the_sampler_s_connections_read_hyperliquid_s_refusals() -> None:
    """A refused subscription (an unknown coin, the 10-user cap) must be counted, not read
    as a quiet market: both the trades and the watched-account connections carry the
    venue's reader of ``{"channel":"error","data":..}``."""
    sampler = _offline_sampler([0])
    refused = '{"channel":"error","data":"Invalid subscription {\\"type\\":\\"trades\\"}"}'
    for spec in (sampler.feed_spec(), sampler._user_spec("0x" + "ab" * 20)):
        assert spec.refusal is not None, spec.name
        assert spec.refusal(refused) == 'Invalid subscription {"type":"trades"}'
        assert spec.refusal('{"channel":"pong"}') is None
        ack = '{"channel":"subscriptionResponse","data":{"method":"subscribe"}}'
        assert spec.refusal(ack) is None


async def test_an_account_store_outage_logs_two_lines_and_loses_no_account(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The discovered accounts are saved every 2 s; with the database away each failed save
    logged a WARNING (every 2 s for the whole outage). Now one line when saves start failing,
    one when they work again, and the accounts wait for the store meanwhile."""

    class Flaky:
        def __init__(self) -> None:
            self.failures_left = 5
            self.saved: list[str] = []

        async def add(self, exchange: str, addresses: Sequence[str], ts_ms: int) -> None:
            if self.failures_left:
                self.failures_left -= 1
                raise ConnectionError("account store 'postgresql://db/pf': cannot connect:\\n\\tno")
            self.saved += addresses

    store = Flaky()
    sampler = PositionSampler(
        SAMPLING,
        SamplerConfig(budget_per_minute=100),
        accounts=store,  # type: ignore[arg-type]
    )
    sampler._unsaved = [_address(1), _address(2)]
    caplog.set_level(logging.INFO, logger="purpleflea.ingest.position_sampler")
    task = asyncio.create_task(sampler._save_discovered(interval=0.01))
    try:
        await _until(lambda: len(store.saved) == 2, "the accounts saved")
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert store.saved == [_address(1), _address(2)]
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 2, lines
    assert "cannot save accounts: ConnectionError: " in lines[0]
    assert "\n" not in lines[0]
    assert "saved again" in lines[1]


def test_a_429s_retry_after_may_be_an_http_date() -> None:
    in_a_minute = email.utils.formatdate(time.time() + 60, usegmt=True)
    assert position_sampler._retry_after(in_a_minute) == pytest.approx(60.0, abs=2.0)
    assert position_sampler._retry_after("7") == 7.0
    assert position_sampler._retry_after("99999999999") == 86_400.0
    assert position_sampler._retry_after("soon") == position_sampler.PAUSE_WITHOUT_RETRY_AFTER_S
    assert position_sampler._retry_after(None) == position_sampler.PAUSE_WITHOUT_RETRY_AFTER_S


async def test_a_builder_market_named_with_control_characters_gets_no_measured_map(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # A builder dex names its coins; the names check drops liquidations and snapshots of such
    # a market, and the sampler's marks now too: GET /v1/markets listed it among the
    # measured heatmaps, escapes and all ('\x1b[2JX-PERP' for the coin 'xyz:\x1b[2JX').
    hostile = "xyz:\x1b[2JX"
    markets = {"BTC": (MARK, OPEN_INTEREST), hostile: (3.0, 4.0)}
    async with FakeHyperliquid(markets=markets) as fake:
        sampler = PositionSampler(
            SAMPLING, coins=("BTC", hostile), info_url=fake.info_url, ws_url=fake.ws_url
        )
        async with httpx.AsyncClient() as client:
            sampler.client = client
            caplog.set_level(logging.WARNING, logger="purpleflea.ingest.position_sampler")
            await sampler.poll_contexts()
            await sampler.poll_contexts()
    assert sampler.markets() == ("BTC-PERP",)
    assert sampler.stats.rejected_names == 2
    [line] = [r.getMessage() for r in caplog.records]  # the first only
    assert line.isprintable()


async def test_a_market_the_venue_stopped_listing_leaves_after_a_day() -> None:
    # A coin Hyperliquid delists is no longer in its asset contexts, but its last context
    # stayed: GET /v1/markets listed its measured map for good, at the mark it was delisted
    # at, and each coin ever listed stayed in the contexts and the schedule's marks. As the
    # heatmap retires a listing: a day without a reading.
    now = [1_700_000_000_000]
    markets = {"BTC": (MARK, OPEN_INTEREST), "ETH": (3_000.0, 5_000.0)}
    async with FakeHyperliquid(markets=markets) as fake:
        sampler = PositionSampler(
            SAMPLING,
            coins=("BTC", "ETH"),
            info_url=fake.info_url,
            ws_url=fake.ws_url,
            clock=lambda: now[0],
        )
        async with httpx.AsyncClient() as client:
            sampler.client = client
            await sampler.poll_contexts()
            del fake.markets["ETH"]
            now[0] += 3_600_000  # an hour unlisted: a venue's hiccup, kept
            await sampler.poll_contexts()
            assert sampler.markets() == ("BTC-PERP", "ETH-PERP")
            now[0] += 23 * 3_600_000
            await sampler.poll_contexts()
    assert sampler.markets() == ("BTC-PERP",)
    assert set(sampler.schedule.marks) == {"BTC-PERP"}
