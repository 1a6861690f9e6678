"""The position sampler: discovers accounts from the public trade stream and polls their
positions within the venue's documented rate limit, nearest-to-liquidation first.

The decisions are :class:`~purpleflea.ingest.sampling_schedule.Schedule`'s (pure); this is the
thin async driver around it, for one venue's :class:`~purpleflea.venues.venue.PositionSampling`:

- **discovery**: the venue's trade stream through the shared connection runner
  (:func:`~purpleflea.ingest.connection.run_feed`: reconnect, backoff with jitter, silence
  watchdog like every feed); each trade's addresses go to the schedule and, in batches, to the
  account store, so a restart resumes with the accounts it knew;
- **marks and open interest**: one request per scope every ``contexts_interval`` seconds;
- **positions**: one request per scope whenever the schedule names an account; an HTTP 429
  backs the whole sampler off for ``Retry-After`` (the allowance is per IP, shared by every
  request);
- **scopes**: the parts of the venue the coins trade on (Hyperliquid's perp dexes: ``BTC`` on
  the first, ``xyz:CRWV`` on the builder dex ``xyz``), each asked apart. Two scopes may list
  one market name (a builder dex's ``BTC`` is ``BTC-PERP`` too, with its own price, book and
  positions): its marks, trades and positions are taken from one scope only, the first of
  the sampler's order that lists it (the first perp dex first), never merged;
- **liquidations**: the riskiest sampled accounts (nearest to liquidation, as many as the
  venue's documented caps allow: users across user subscriptions, and connections per IP less
  the trade stream's) are watched on their own websocket connection, whose liquidation fills
  go to ``sink``. A watched account is replaced only when a riskier one can take its place,
  and the sampler opens at most the venue's new connections a minute less one per connection
  it may hold (so every held connection can still reconnect once in that minute); for every
  other sampled
  account, a position that vanished between two polls while the market traded through its
  liquidation price goes to ``sink`` as a liquidation
  (:mod:`purpleflea.ingest.sampled_liquidations`). One deduper spans all of them.

:meth:`PositionSampler.measured` turns what was sampled into the measured map of a market.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import httpx
import msgspec

from purpleflea.clock import now_ms, retry_after_seconds
from purpleflea.engine.measured_map import cut
from purpleflea.formatting import printable
from purpleflea.ingest.backoff import MAX_RETRY_AFTER, Backoff
from purpleflea.ingest.connection import run_feed
from purpleflea.ingest.connection_stats import ConnectionStats
from purpleflea.ingest.dedupe import Deduper
from purpleflea.ingest.feed_spec import FeedSpec, Sink
from purpleflea.ingest.open_budget import OpenBudget
from purpleflea.ingest.sampled_liquidations import PriceExtremes, vanished
from purpleflea.ingest.sampling_schedule import (
    SamplerConfig,
    Schedule,
    check_budget,
    distance_to_liquidation,
)
from purpleflea.model import VenueLiquidation, names_problem
from purpleflea.outage import OutageRecord, describe
from purpleflea.positions import MarketContext, MeasuredInputs, MeasuredMap, Position
from purpleflea.store.accounts import AccountStore
from purpleflea.venues import FrameError
from purpleflea.venues.venue import PositionSampling

log = logging.getLogger("purpleflea.ingest.position_sampler")

_MINUTE_S = 60.0
#: Seconds every request waits after a 429 that names no ``Retry-After`` (Hyperliquid's names
#: none).
PAUSE_WITHOUT_RETRY_AFTER_S = 5.0
#: A market no asset context has listed for this long is dropped (a delisted coin), as the
#: heatmap retires a listing no snapshot reported for a day (``retire_after_h``).
RETIRE_AFTER_MS = 24 * 3_600_000


@dataclass
class SamplerStats:
    """Counters of one sampler, for health and benchmarks."""

    polls: int = 0
    failures: int = 0
    rate_limited: int = 0
    discovered: int = 0
    context_polls: int = 0
    #: Markets left out of the marks for a name no user should be sent (``names_problem``).
    rejected_names: int = 0
    #: Positions that vanished at their liquidation price between two polls.
    liquidations: int = 0
    last_error: str = ""
    discovery: ConnectionStats = field(default_factory=lambda: ConnectionStats("discovery"))


class RateLimited(Exception):
    """The venue answered 429: wait ``retry_after`` seconds before any request."""

    def __init__(self, retry_after: float) -> None:
        super().__init__(f"rate limited: retry after {retry_after:g} s")
        self.retry_after = retry_after


class PositionSampler:
    """Samples one venue's account positions; :meth:`run` until cancelled."""

    def __init__(
        self,
        sampling: PositionSampling,
        config: SamplerConfig | None = None,
        *,
        coins: Sequence[str] = ("BTC", "ETH"),
        info_url: str | None = None,
        ws_url: str | None = None,
        accounts: AccountStore | None = None,
        client: httpx.AsyncClient | None = None,
        contexts_interval: float = 30.0,
        restore_limit: int = 10_000,
        backoff: Backoff | None = None,
        clock: Callable[[], int] = now_ms,
        sink: Sink | None = None,
    ) -> None:
        self.sampling = sampling
        self.config = config or SamplerConfig()
        self.coins = tuple(coins)
        #: The scopes of the coins, the venue's unnamed (``""``) first, each once.
        self.scopes = tuple(
            sorted(dict.fromkeys(sampling.scope(coin) for coin in self.coins), key=bool)
        ) or ("",)
        check_budget(
            self.config,
            sampling.weight_per_minute,
            sampling.account_weight,
            reserved=len(self.scopes) * sampling.contexts_weight * _MINUTE_S / contexts_interval
            + sampling.reserved_weight_per_minute,
        )
        # The budget counts position requests: an account's poll asks each scope.
        per_poll = max(1, self.config.budget_per_minute // len(self.scopes))
        self.schedule = Schedule(msgspec.structs.replace(self.config, budget_per_minute=per_poll))
        #: market -> the scope its marks, trades and positions are taken from.
        self._owner: dict[str, str] = {}
        self.info_url = info_url or sampling.info_url
        self.ws_url = ws_url or sampling.ws_url
        self.accounts = accounts
        self.client = client
        self.contexts_interval = contexts_interval
        self.restore_limit = restore_limit
        self.backoff = backoff
        self.clock = clock
        self.contexts: dict[str, MarketContext] = {}
        self._contexts_ms = -1  # when the marks of ``contexts`` were polled
        self._listed_ms: dict[str, int] = {}  # market -> when a poll last listed it
        self.stats = SamplerStats()
        self._unsaved: list[str] = []
        self.sink = sink
        self.extremes = PriceExtremes(keep_ms=2 * self.config.max_interval_ms)
        self._polled_at: dict[str, int] = {}
        self.watched: dict[str, asyncio.Task[None]] = {}
        self.watch_interval = 5.0
        per_minute = sampling.max_new_connections_per_minute
        #: The venue's cap on new connections a minute, taken by every connection the sampler's
        #: feeds open (reconnects too). Its clock is the sampler's, as tests set it.
        self.opens = (
            None if per_minute is None else OpenBudget(per_minute, clock=lambda: self.clock())  # noqa: PLW0108
        )
        self.deduper = Deduper()
        self._paused_until = 0.0  # loop time before which no request is sent (429)

    # -- discovery ---------------------------------------------------------------------

    def feed_spec(self) -> FeedSpec:
        """The trade-stream connection: its frames name accounts, not liquidations."""
        return FeedSpec(
            name=f"{self.sampling.exchange}_trades",
            exchange=self.sampling.exchange,
            url=self.ws_url,
            normalize=self._discover,
            subscribe=tuple(self.sampling.trades_subscription(coin) for coin in self.coins),
            keepalive='{"method":"ping"}',
            refusal=self.sampling.refusal,
            subscribed=self.sampling.subscribed,
        )

    def _discover(self, frame: bytes | str) -> list[VenueLiquidation]:
        now = self.clock()
        for trade in self.sampling.parse_trades(frame):
            # Another scope's market of the same name names accounts, but its prices are not
            # this market's.
            if not trade.symbol or self._owns(trade.market, self.sampling.scope(trade.symbol)):
                self.extremes.add(trade.market, trade.ts, trade.price)
            for address in trade.users:
                if self.schedule.discover(address, now):
                    self.stats.discovered += 1
                    self._unsaved.append(address)
        return []

    async def _save_discovered(self, interval: float = 2.0) -> None:
        """Store the accounts discovered since the last save, every ``interval`` s. A store
        outage is logged once when saves start failing and once when they work again (it
        had logged every 2 s), and the accounts wait meanwhile."""
        assert self.accounts is not None
        saves = OutageRecord()
        while True:
            await asyncio.sleep(interval)
            batch, self._unsaved = self._unsaved, []
            try:
                await self.accounts.add(self.sampling.exchange, batch, self.clock())
            except Exception as exc:  # a store outage must not stop sampling; retry next time
                self._unsaved = batch + self._unsaved
                self.stats.last_error = f"account store: {exc}"
                error = describe(exc)
                if saves.failed(error):
                    log.warning(
                        "position sampler: cannot save accounts: %s (sampling goes on; "
                        "retrying every %g s, the next line says when it recovers)",
                        error,
                        interval,
                    )
                continue
            ended = saves.recovered()
            if ended is not None:
                log.warning(
                    "position sampler: accounts saved again after %.0f s (%d failed saves)",
                    ended.seconds,
                    ended.failures,
                )

    async def restore(self) -> int:
        """Put the accounts the store knows back in the schedule (due at once)."""
        if self.accounts is None:
            return 0
        known = await self.accounts.recent(self.sampling.exchange, self.restore_limit)
        now = self.clock()
        return sum(self.schedule.discover(address, now) for address in known)

    # -- requests ----------------------------------------------------------------------

    async def _post(self, payload: object) -> bytes:
        assert self.client is not None
        pause = self._paused_until - asyncio.get_running_loop().time()
        if pause > 0:
            await asyncio.sleep(pause)
        response = await self.client.post(self.info_url, json=payload)
        if response.status_code == 429:
            retry = _retry_after(response.headers.get("retry-after"))
            self._paused_until = asyncio.get_running_loop().time() + retry
            raise RateLimited(retry)
        response.raise_for_status()
        return response.content

    def _owns(self, market: str, scope: str) -> bool:
        """Whether ``market``'s state is taken from ``scope`` (before any contexts say which
        scope lists it, the first scope's)."""
        return self._owner.get(market, self.scopes[0]) == scope

    def _names_problem(self, market: str) -> str | None:
        """Why ``market`` (named by the venue: a builder dex names its coins) cannot be
        served, as an event's names are judged; counted, the first logged."""
        exchange = self.sampling.exchange
        problem = names_problem(market, market, exchange, f"{exchange}:{market}")
        if problem is not None:
            if not self.stats.rejected_names:
                log.warning(
                    "%s market left out of the measured maps: %s (further ones are counted)",
                    exchange,
                    printable(problem),
                )
            self.stats.rejected_names += 1
        return problem

    async def poll_contexts(self) -> None:
        """Fetch marks and open interest once, of every scope in order; the schedule ranks
        accounts by these marks. A scope that fails ends the round (raised) after the scopes
        before it are used, so a market is always claimed by the first scope listing it and
        one bad builder dex does not stop the others' maps."""
        contexts: dict[str, MarketContext] = {}
        failure: Exception | None = None
        for scope in self.scopes:
            try:
                found = self.sampling.parse_contexts(
                    await self._post(self.sampling.contexts_request(scope))
                )
            except (httpx.HTTPError, RateLimited, FrameError, ValueError) as exc:
                failure = exc
                break
            for market, context in found.items():  # a market belongs to its first lister
                if self._names_problem(market) is not None:
                    continue  # no measured map: its name would be listed to every user
                if self._owner.setdefault(market, scope) == scope:
                    contexts[market] = context
        if contexts or failure is None:
            self.stats.context_polls += 1
            self.contexts.update(contexts)
            self._contexts_ms = self.clock()
            self.schedule.marks.update({m: c.mark_price for m, c in contexts.items()})
            self._retire_unlisted(contexts)
        if failure is not None:
            raise failure

    def _retire_unlisted(self, listed: dict[str, MarketContext]) -> None:
        """Drop the markets no poll listed for :data:`RETIRE_AFTER_MS`: a delisted coin's
        last context stayed for good, its measured map listed by ``GET /v1/markets`` at the
        mark it was delisted at."""
        now = self._contexts_ms
        self._listed_ms.update(dict.fromkeys(listed, now))
        for market, at in list(self._listed_ms.items()):
            if now - at >= RETIRE_AFTER_MS:
                del self._listed_ms[market]
                self.contexts.pop(market, None)
                self.schedule.marks.pop(market, None)
                self._owner.pop(market, None)

    async def _contexts_loop(self) -> None:
        while True:
            try:
                await self.poll_contexts()
            except (httpx.HTTPError, RateLimited, FrameError, ValueError) as exc:
                self._failed(exc)
            # Nothing listed yet (a venue still starting, as the simulated one does): ask again
            # soon, or no map could be served for a whole interval.
            await asyncio.sleep(
                self.contexts_interval if self.contexts else min(self.contexts_interval, 5.0)
            )

    async def poll_account(self, account: str) -> None:
        """Poll one account now and record its positions (or its failure) in the schedule."""
        try:
            positions = []
            for scope in self.scopes:
                body = await self._post(self.sampling.account_request(account, scope))
                positions += [
                    position
                    for position in self.sampling.parse_account(body, account)
                    if self.sampling.scope(position.symbol) == scope
                    and self._owns(position.market, scope)
                ]
        except (httpx.HTTPError, RateLimited, FrameError) as exc:
            self._failed(exc)
            self.schedule.failed(account, self.clock())
            return
        self.stats.polls += 1
        now = self.clock()
        before = self.schedule.positions.get(account)
        since = self._polled_at.get(account)
        self._polled_at[account] = now
        self.schedule.polled(account, positions, now)
        # A watched account's own liquidation fills are the better source: not guessed twice.
        if before and since is not None and self.sink is not None and account not in self.watched:
            for event in vanished(before, positions, self.extremes, since_ms=since, now_ms=now):
                if not self.deduper.seen(event.id, time.monotonic()):
                    self.stats.liquidations += 1
                    self.sink(event, now)

    def _failed(self, exc: Exception) -> None:
        self.stats.failures += 1
        if isinstance(exc, RateLimited):
            self.stats.rate_limited += 1
        self.stats.last_error = f"{type(exc).__name__}: {exc}"
        log.debug("position sampler: %s", self.stats.last_error)

    async def _accounts_loop(self) -> None:
        # With several scopes, which one a market belongs to is known from the first contexts
        # (till then another scope's positions are left out): polls wait for them.
        while len(self.scopes) > 1 and self._contexts_ms < 0:
            await asyncio.sleep(0.05)
        while True:
            now = self.clock()
            account = self.schedule.next(now)
            if account is None:
                # Woken at least every second: the trade stream may have named new accounts.
                await asyncio.sleep(min(self.schedule.wait_ms(now), 1_000) / 1_000)
                continue
            await self.poll_account(account)

    # -- watched accounts --------------------------------------------------------------

    def riskiest(self, count: int) -> list[str]:
        """Up to ``count`` sampled accounts nearest to liquidation (at the marks of now)."""
        ranked = sorted(
            (distance_to_liquidation(held, self.schedule.marks), account)
            for account, held in self.schedule.positions.items()
            if held
        )
        return [account for distance, account in ranked[:count] if math.isfinite(distance)]

    def watch_cap(self) -> int:
        """How many accounts may be watched: the venue's cap on users, and its cap on
        connections less the trade stream's."""
        cap = self.sampling.max_user_subscriptions
        if self.sampling.max_connections is not None:
            cap = min(cap, self.sampling.max_connections - 1)
        return max(0, cap)

    def new_connections_left(self) -> int | None:
        """Accounts the sampler may start watching now (None: no documented cap).

        The venue's cap this minute less one slot per connection the sampler may hold, so that
        a reconnect (which takes a slot too, see :class:`OpenBudget`) finds one without waiting.
        """
        if self.opens is None:
            return None
        return max(0, self.opens.left() - (self.watch_cap() + 1))

    def _user_spec(self, account: str) -> FeedSpec:
        parse = self.sampling.parse_user_liquidations
        return FeedSpec(
            name=f"{self.sampling.exchange}_user_{account[:10]}",
            exchange=self.sampling.exchange,
            url=self.ws_url,
            normalize=lambda frame: parse(frame, account),
            subscribe=(self.sampling.user_subscription(account),),
            keepalive='{"method":"ping"}',
            refusal=self.sampling.refusal,
            subscribed=self.sampling.subscribed,
            quiet=True,
        )

    async def rewatch(self) -> None:
        """Watch the riskiest accounts within the venue's caps (:meth:`watch_cap`, and
        :meth:`new_connections_left` this minute), riskiest first. An account no longer among
        them is watched until a riskier one takes its place; it stops (its connection closed)
        before that one starts, so the caps hold at every moment."""
        if self.sink is None:
            return
        cap = self.watch_cap()
        ranked = self.riskiest(cap)
        want = set(ranked)
        added = [account for account in ranked if account not in self.watched]
        left = self.new_connections_left()
        if left is not None:
            added = added[:left]
        # The stale ones farthest from liquidation (or holding nothing now) go first.
        stale = sorted(
            (account for account in self.watched if account not in want),
            key=lambda account: (
                -distance_to_liquidation(
                    self.schedule.positions.get(account, ()), self.schedule.marks
                )
            ),
        )
        for account in stale[: max(0, len(self.watched) + len(added) - cap)]:
            task = self.watched.pop(account)
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        first = not self.watched
        for account in added:
            if self.opens is not None and not self.opens.try_take():
                break  # (``added`` is within new_connections_left, so a slot is free)
            feed = run_feed(
                self._user_spec(account),
                self.sink,
                backoff=self.backoff,
                deduper=self.deduper,
                opens=self.opens,
                opened=self.opens is not None,
            )
            self.watched[account] = asyncio.create_task(feed)
        if added:
            # Once at info (the set then changes every few seconds as marks move).
            (log.info if first else log.debug)(
                "%s: watching the %d accounts nearest liquidation (%d new)",
                self.sampling.exchange,
                len(self.watched),
                len(added),
            )

    async def _watch_loop(self) -> None:
        try:
            while True:
                await self.rewatch()
                await asyncio.sleep(self.watch_interval)
        finally:
            for task in self.watched.values():
                task.cancel()
            for task in self.watched.values():
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            self.watched.clear()

    async def run(self) -> None:
        """Restore, then discover, poll marks and poll positions until cancelled."""
        own_client = self.client is None
        if own_client:
            self.client = httpx.AsyncClient(timeout=10.0)
        tasks: list[asyncio.Task[None]] = []
        try:
            await self.restore()
            tasks = [
                asyncio.create_task(
                    run_feed(
                        self.feed_spec(),
                        _no_events,
                        self.stats.discovery,
                        backoff=self.backoff,
                        opens=self.opens,
                    )
                ),
                asyncio.create_task(self._contexts_loop()),
                asyncio.create_task(self._accounts_loop()),
                asyncio.create_task(self._watch_loop()),
            ]
            if self.accounts is not None:
                tasks.append(asyncio.create_task(self._save_discovered()))
            await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            if own_client and self.client is not None:
                await self.client.aclose()
                self.client = None

    # -- the product -------------------------------------------------------------------

    def markets(self) -> tuple[str, ...]:
        """Markets with a known mark and open interest, sorted."""
        return tuple(sorted(self.contexts))

    def measured_inputs(self, market: str) -> MeasuredInputs:
        """What :meth:`measured` cuts ``market``'s map from, now: its sampled positions, mark
        and open interest. Raises ``LookupError`` before the mark and open interest are known."""
        context = self.contexts.get(market)
        if context is None:
            raise LookupError(f"measured map {market}: no mark and open interest polled yet")
        return MeasuredInputs(
            market=market,
            ts=self.clock(),
            mark_price=context.mark_price,
            open_interest_usd=context.open_interest_usd,
            positions=tuple(self.counted(market)),
        )

    def measured(
        self,
        market: str,
        *,
        low: float | None = None,
        high: float | None = None,
        bucket: float | None = None,
    ) -> MeasuredMap:
        """The measured map of ``market`` from every sampled account's last positions.
        Raises ``LookupError`` before the market's mark and open interest are known."""
        return cut(self.measured_inputs(market), low=low, high=high, bucket=bucket)

    def counted(self, market: str) -> list[Position]:
        """The sampled positions of ``market`` the measured map counts: polled within the
        config's ``age_limit_ms``, and not passed since their poll by the market's trades or
        by a mark polled after them. A passed position is gone (the venue liquidates at that
        price) from that moment, not from its account's next poll; that poll then tells its
        liquidation (:func:`vanished`), which the schedule hurries (distance 0)."""
        now = self.clock()
        oldest = now - self.config.age_limit_ms
        traded = self.extremes.since(market)
        context = self.contexts.get(market)
        kept = []
        for account, held in self.schedule.positions.items():
            polled = self.schedule.polled_ms.get(account, oldest - 1)
            if polled < oldest:
                continue
            mark = context.mark_price if context and self._contexts_ms >= polled else None
            for position in held:
                if position.market == market and not _passed(position, traded(polled), mark):
                    kept.append(position)
        return kept


def _passed(position: Position, traded: tuple[float, float] | None, mark: float | None) -> bool:
    """Whether the market went through ``position``'s liquidation price: it traded there
    (``traded``: lowest and highest price since) or the mark is beyond it."""
    liquidation = position.liquidation_price
    if liquidation is None:
        return False
    if position.side == "long":
        return (traded is not None and traded[0] <= liquidation) or (
            mark is not None and mark <= liquidation
        )
    return (traded is not None and traded[1] >= liquidation) or (
        mark is not None and mark >= liquidation
    )


def _no_events(event: VenueLiquidation, received_at: int) -> None:
    del event, received_at  # the trade stream's normalizer returns none


def _retry_after(value: str | None) -> float:
    """A 429's ``Retry-After`` (seconds or an HTTP date), at most :data:`MAX_RETRY_AFTER`;
    :data:`PAUSE_WITHOUT_RETRY_AFTER_S` when it names none or none that parses."""
    seconds = retry_after_seconds(value, now=time.time())
    if seconds is None:
        return PAUSE_WITHOUT_RETRY_AFTER_S
    return min(seconds, MAX_RETRY_AFTER)
