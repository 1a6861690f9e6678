"""Hyperliquid's share of the simulated market, served by a :class:`LocalHyperliquid`.

The simulator (:mod:`purpleflea.sim`) lists no Hyperliquid instrument: its events come from
the venues with public liquidation feeds. This gives the position sampler something true to
sample offline. Each open true position (``sim.truth.positions()``) of a served coin's market
is held, for :data:`SHARE` of its size, by one Hyperliquid address derived from the seed and the
position's id (so the same position has the same address after a restart), with the position's
own entry, leverage (isolated margin, as the simulator models it) and liquidation price.

Per simulator step (:meth:`SimulatedHyperliquid.observe`, called by the live source between
steps, so the Book is never read while a block is computed):

- marks and open interest (:data:`SHARE` of the simulator's, one side) for ``metaAndAssetCtxs``;
- ``trades`` naming addresses that hold positions, in turn (every holder is named within
  ``len(holders) / (2 x trades_per_step)`` steps, new ones at their turn), at the mark, so the
  sampler discovers them and sees the market move; at most one batch per coin every
  :data:`TRADE_EVERY_MS` of wall time, so a market run faster than real time does not flood
  the websocket;
- a position that left the book at a step that liquidated it (the simulator's event names it,
  or the mark crossed its liquidation price) is a liquidation: a public trade at its
  liquidation price (as the venue's liquidation order trades on the book; the sampler sees the
  market reach the price), and its holder's ``userEvents`` subscribers get the liquidation
  fill (``liquidation.liquidatedUser`` = the holder, at the position's liquidation price);
  its next ``clearinghouseState`` no longer shows it, which is
  how the sampler tells it for accounts it does not watch.

The share held here is taken from the simulator's own venue events: while this venue runs,
``purpleflea serve`` publishes those events of a served market at ``1 - share`` of their size
(:meth:`SimulatedHyperliquid.held_share`), so each liquidated position's Hyperliquid part
reaches the stream once, as the sampler's ``hyperliquid`` event, and only if it was sampled.
"""

from __future__ import annotations

import asyncio
import bisect
import hashlib
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from purpleflea.clock import now_ms
from purpleflea.venues.hyperliquid.local_server import HeldPosition, LocalHyperliquid
from purpleflea.venues.hyperliquid.normalizer import market

if TYPE_CHECKING:
    from purpleflea.sim.process import SimStep, Simulator
    from purpleflea.sim.truth import TruePosition

#: The part of every simulated position Hyperliquid accounts hold. A modelling choice: the
#: real venue carried about half of 2025-10-10's liquidations (issue 17) and a smaller part of
#: open interest; a quarter keeps the sampled book large without pretending to know it.
SHARE = 0.25
#: Trades per served coin per simulator step (250 ms): 2 addresses each.
TRADES_PER_STEP = 2
#: Wall-clock milliseconds between two batches of a coin's trades (a step at speed 1).
TRADE_EVERY_MS = 250


def address_of(seed: int, position_id: int) -> str:
    """The Hyperliquid address holding the share of true position ``position_id``: stable for
    a seed (a restarted market keeps its positions' ids, hence their addresses)."""
    digest = hashlib.sha256(f"purpleflea-sim:{seed}:{position_id}".encode()).hexdigest()
    return "0x" + digest[:40]


@dataclass(frozen=True, slots=True)
class _Coin:
    coin: str  # Hyperliquid's name (kPEPE)
    market: str  # BTC-PERP
    multiplier: float  # coins per Hyperliquid unit


@dataclass(frozen=True, slots=True)
class _Holding:
    address: str
    position: HeldPosition
    liquidation: float  # per coin
    long: bool


class SimulatedHyperliquid(LocalHyperliquid):
    """The local Hyperliquid of a simulated market: :meth:`observe` it after every step."""

    def __init__(
        self,
        coins: Sequence[str],
        *,
        share: float = SHARE,
        trades_per_step: int = TRADES_PER_STEP,
    ) -> None:
        super().__init__()
        if not 0 < share <= 1:
            raise ValueError(f"simulated Hyperliquid: share must be in (0, 1], got {share}")
        self.share = share
        self.trades_per_step = trades_per_step
        self.coins: list[_Coin] = []
        for coin in coins:
            found = market(coin)
            if found is None:
                raise ValueError(f"simulated Hyperliquid: {coin!r} is not a perpetual's coin")
            self.coins.append(_Coin(coin, found.name, found.multiplier))
        self._held: dict[str, HeldPosition] = {}
        self._holdings: dict[str, dict[int, _Holding]] = {c.coin: {} for c in self.coins}
        self._contexts: dict[str, tuple[float, float]] = {}
        self._marks: dict[str, float] = {}
        self._turn: dict[str, int] = {c.coin: 0 for c in self.coins}
        self._ids: dict[str, npt.NDArray[np.int64]] = {}
        self._traded_at: dict[str, int] = {}
        self._in_turn: dict[str, list[_Holding]] = {c.coin: [] for c in self.coins}
        self._sending: set[asyncio.Task[None]] = set()
        #: Positions seen leaving the book liquidated (their fills sent to watchers).
        self.liquidated = 0

    # -- what is held --------------------------------------------------------------------

    def held(self, user: str) -> Sequence[HeldPosition]:
        found = self._held.get(user)
        return (found,) if found is not None else ()

    def contexts(self) -> Mapping[str, tuple[float, float]]:
        return self._contexts

    def held_share(self, market: str) -> float:
        return self.share if any(c.market == market for c in self.coins) else 0.0

    def holders(self, coin: str) -> dict[int, str]:
        """True position id -> the address holding its share, for ``coin``'s market now."""
        return {pid: h.address for pid, h in self._holdings.get(coin, {}).items()}

    # -- the simulator's step --------------------------------------------------------------

    def observe(self, sim: Simulator, step: SimStep) -> None:
        """Take the book as of ``step`` (just yielded by the simulator) and publish its trades
        and liquidations to the subscribers."""
        named = {event.liquidated_user for event in step.liquidations if event.liquidated_user}
        wall = now_ms()
        for coin in self.coins:
            if coin.market not in sim.market_index:
                continue
            mark = sim.mark(coin.market)
            before = self._marks.get(coin.market, mark)
            self._marks[coin.market] = mark
            low, high = min(before, mark), max(before, mark)
            # Named but not held before this step: opened within it (or another market's).
            # Each named id is looked up: a set less the dict's keys would walk all the keys
            # (tens of thousands for BTC), on every step.
            held = self._holdings[coin.coin]
            unseen = {pid for n in named if (pid := int(n.removeprefix("cohort-"))) not in held}
            change = self._changed_ids(sim, coin)
            fills = (
                []
                if change is None
                else self._retake(sim, coin, change, named, (low, high), step.ts)
            )
            fills += self._opened_and_liquidated(sim, coin, unseen, step.ts)
            self.liquidated += len(fills)
            open_interest = self.share * sim.truth.open_interest(coin.market)
            self._contexts[coin.coin] = (mark / coin.multiplier, open_interest * coin.multiplier)
            trades = self._liquidation_trades(coin, fills, wall)
            if wall - self._traded_at.get(coin.coin, -TRADE_EVERY_MS) >= TRADE_EVERY_MS:
                self._traded_at[coin.coin] = wall
                trades += self._trades(coin, self._in_turn[coin.coin], mark, wall)
            self._schedule(coin.coin, trades, fills)

    def _retake(
        self,
        sim: Simulator,
        coin: _Coin,
        change: tuple[set[int], set[int]],
        named: set[str],
        traded: tuple[float, float],
        ts: int,
    ) -> list[tuple[str, dict[str, Any]]]:
        """Take the positions that came and drop those that left (``change``); the
        liquidation fills of those that left. Only the new ones are built: the held ones
        stand (their size, entry and price do not change while open), and BTC's book holds
        tens of thousands."""
        holdings = self._holdings[coin.coin]
        came = {pid for pid in change[0] if pid not in holdings}
        left = {pid for pid in change[1] if pid in holdings}
        born = (
            self._take(sim.config.seed, coin, sim.truth.positions(coin.market, ids=came))
            if came
            else {}
        )
        gone = {pid: holdings.pop(pid) for pid in sorted(left)}
        mark = self._marks[coin.market]
        fills = [
            self._fill(coin, holding, mark, ts)
            for pid, holding in gone.items()
            if _liquidated(holding, pid, named, *traded)
        ]
        for holding in gone.values():
            self._held.pop(holding.address, None)
        for pid, holding in born.items():
            holdings[pid] = holding
            self._held[holding.address] = holding.position
        self._turn_change(coin.coin, gone.values(), born.values())
        return fills

    def _turn_change(
        self, coin: str, gone: Collection[_Holding], born: Collection[_Holding]
    ) -> None:
        """Keep the coin's holders in address order (their turn to trade): a step changes a
        few of tens of thousands, so those few move instead of all being sorted again (that
        sort was most of a demo step's cost)."""
        in_turn = self._in_turn[coin]
        if len(gone) + len(born) > len(in_turn) // 8:  # the first look: sort them all
            self._in_turn[coin] = sorted(self._holdings[coin].values(), key=_by_address)
            return
        for holding in gone:
            del in_turn[bisect.bisect_left(in_turn, holding.address, key=_by_address)]
        for holding in born:
            bisect.insort(in_turn, holding, key=_by_address)

    def _opened_and_liquidated(
        self, sim: Simulator, coin: _Coin, unseen: set[int], ts: int
    ) -> list[tuple[str, dict[str, Any]]]:
        """Fills of positions opened and liquidated within the step (``unseen``: named by its
        events, not held before it): never seen open here, but the venue holds its share of
        every position (the stream leaves that part to it)."""
        held = self._holdings[coin.coin]
        unseen = {pid for pid in unseen if pid not in held}  # open now: not liquidated
        if not unseen:
            return []
        born = sim.truth.positions(coin.market, at_ms=ts - sim.config.step_ms, ids=unseen)
        mark = self._marks[coin.market]
        held = self._take(sim.config.seed, coin, born)
        return [self._fill(coin, holding, mark, ts) for holding in held.values()]

    def _changed_ids(self, sim: Simulator, coin: _Coin) -> tuple[set[int], set[int]] | None:
        """The ids of the market's open positions that came and that left since last time, or
        None when none did (most steps open, close and liquidate nothing). Compared slot by
        slot: only the slots that changed are looked at."""
        book = sim.book
        m = sim.market_index[coin.market]
        lo, hi = int(book.seg[m]), int(book.seg[m + 1])
        ids = np.where(book.alive(sim.now_ms)[lo:hi], book.cohort_id[lo:hi], -1)
        before = self._ids.get(coin.coin)
        self._ids[coin.coin] = ids
        if before is None or before.size != ids.size:  # the first look, or a resized book
            now = set(ids[ids >= 0].tolist())
            held = self._holdings[coin.coin].keys()
            return now - held, held - now
        moved = np.nonzero(before != ids)[0]
        if moved.size == 0:
            return None
        new, old = ids[moved], before[moved]
        came, left = set(new[new >= 0].tolist()), set(old[old >= 0].tolist())
        return came - left, left - came  # an id that only changed slot stays held

    def _take(self, seed: int, coin: _Coin, true: list[TruePosition]) -> dict[int, _Holding]:
        # Only positions not held yet come here (_retake keeps the held ones as they stand).
        holdings = {}
        for p in true:
            size = self.share * p.quantity * coin.multiplier
            held = HeldPosition(
                coin=coin.coin,
                size=size if p.side == "long" else -size,
                entry=p.entry_price / coin.multiplier,
                liquidation=p.liquidation_price / coin.multiplier,
                leverage=p.leverage,
                margin="isolated",
            )
            holdings[p.id] = _Holding(
                address_of(seed, p.id), held, p.liquidation_price, p.side == "long"
            )
        return holdings

    def _trades(
        self, coin: _Coin, holders: list[_Holding], mark: float, ts: int
    ) -> list[tuple[str, str, float, float, int]]:
        if len(holders) < 2:
            return []
        trades = []
        turn = self._turn[coin.coin]
        for _ in range(self.trades_per_step):
            buyer = holders[turn % len(holders)]
            seller = holders[(turn + 1) % len(holders)]
            turn += 2
            size = min(abs(buyer.position.size), abs(seller.position.size)) * 0.01
            trades.append((buyer.address, seller.address, size, mark / coin.multiplier, ts))
        self._turn[coin.coin] = turn % len(holders)
        return trades

    def _liquidation_trades(
        self, coin: _Coin, fills: list[tuple[str, dict[str, Any]]], ts: int
    ) -> list[tuple[str, str, float, float, int]]:
        """Each liquidation as the venue's public trade: the liquidation order closing the
        position at its liquidation price, against another holder. The simulator liquidates
        a position within a step, its step marks stopping short of the price (0.002-0.05 %
        measured), so without these the trade stream would never reach a liquidation price."""
        holders = self._in_turn[coin.coin]
        trades = []
        for i, (address, fill) in enumerate(fills):
            others = [h.address for h in holders[i : i + 2] if h.address != address]
            if not others:
                continue
            size, price = float(fill["sz"]), float(fill["px"])
            closing_long = fill["side"] == "A"  # the liquidation order sells a long
            buyer, seller = (others[0], address) if closing_long else (address, others[0])
            trades.append((buyer, seller, size, price, ts))
        return trades

    def _fill(
        self, coin: _Coin, holding: _Holding, mark: float, ts: int
    ) -> tuple[str, dict[str, Any]]:
        position = holding.position
        tid = self.next_tid()
        digest = hashlib.sha256(f"{holding.address}:{coin.coin}:{ts}".encode()).hexdigest()
        side = "Long" if holding.long else "Short"
        fill = {
            "coin": coin.coin,
            "px": repr(position.liquidation),
            "sz": repr(abs(position.size)),
            "side": "A" if holding.long else "B",  # the liquidation order closes the position
            "time": now_ms(),
            "startPosition": repr(position.size),
            "dir": f"Liquidated Isolated {side}",
            "closedPnl": "0.0",
            "hash": "0x" + digest,
            "oid": tid,
            "crossed": True,
            "fee": "0.0",
            "tid": tid,
            "liquidation": {
                "liquidatedUser": holding.address,
                "markPx": repr(mark / coin.multiplier),
                "method": "market",
            },
        }
        return holding.address, fill

    def _schedule(
        self,
        coin: str,
        trades: list[tuple[str, str, float, float, int]],
        fills: list[tuple[str, dict[str, Any]]],
    ) -> None:
        if not trades and not fills:
            return
        task = asyncio.get_running_loop().create_task(self._publish(coin, trades, fills))
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def _publish(
        self,
        coin: str,
        trades: list[tuple[str, str, float, float, int]],
        fills: list[tuple[str, dict[str, Any]]],
    ) -> None:
        await self.trades(coin, trades)
        for address, fill in fills:
            await self.user_fills(address, [fill])

    async def close(self) -> None:
        for task in list(self._sending):
            task.cancel()
        await super().close()


def _by_address(holding: _Holding) -> str:
    return holding.address


def _liquidated(holding: _Holding, pid: int, named: set[str], low: float, high: float) -> bool:
    """A position that left the book was liquidated when the simulator's events name it or the
    mark reached its liquidation price over the step (a voluntary close does neither)."""
    if f"cohort-{pid}" in named:
        return True
    return low <= holding.liquidation if holding.long else high >= holding.liquidation
