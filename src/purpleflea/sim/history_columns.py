"""The simulator's published blocks as what a store takes: a batch of events and open
interest rows (:class:`Chunk`), built from arrays alone.

A bulk history's simulation (:class:`~purpleflea.sim.history.Producer`) may run in a child
process (:mod:`purpleflea.sim.history_child`): it sends each batch as it left the simulation
(:class:`Simulated`, numpy arrays that pickle as bytes) and the parent makes the Python
objects (ids, rows) here, on its own core, with the :class:`Layout` the child sent first.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

import numpy as np

from purpleflea.sim.config import event_id_prefix
from purpleflea.sim.events import IntArray, RawBlock
from purpleflea.store.bulk import EventColumns, Venue
from purpleflea.venues import registry

if TYPE_CHECKING:
    from purpleflea.model import Liquidation
    from purpleflea.sim.process import Simulator
    from purpleflea.sim.truth import TrueCascade
    from purpleflea.store.base import OpenInterest
    from purpleflea.store.oi_sampler import KeptTotals

#: Each simulated exchange's coverage class: the real venue's.
COVERAGE = {e: registry.coverage_of(e) for e in registry.SIM_LISTINGS}

_Ms = TypeVar("_Ms", int, IntArray)


def received_at(ts: _Ms, seq: _Ms) -> _Ms:
    """When a simulated event is taken to have reached us: 40-199 ms after it happened,
    spread by its seq (an event or a column of them)."""
    return ts + 40 + seq % 160


@dataclass(slots=True)
class Chunk:
    """What the simulation produced since the previous chunk, ready for the store: events
    as structs, or as columns for a bulk load."""

    events: list[Liquidation] | EventColumns
    open_interest: list[OpenInterest]
    hours: float  # simulated hours it covers


@dataclass(frozen=True, slots=True)
class Simulated:
    """One batch as the simulation left it, seqs from ``first_seq``: the published (thinned)
    blocks and the open interest the sampler kept at each snapshot round."""

    first_seq: int
    blocks: list[RawBlock]
    open_interest: list[KeptTotals]
    hours: float  # simulated hours it covers


@dataclass(frozen=True, slots=True)
class Totals:
    """A simulation's totals once every batch is out."""

    next_seq: int  # the seq after the last event
    markets: int  # markets with at least one event
    notional_usd: float
    end_ms: int
    cascades: tuple[TrueCascade, ...]


@dataclass(frozen=True, slots=True)
class Layout:
    """What names a simulator's arrays: its event id prefix, every listing as a
    :class:`~purpleflea.store.bulk.Venue` (listing ``li`` of market ``m`` is venue
    ``offset[m] + li``) and its market names."""

    prefix: str
    venues: list[Venue]
    offset: IntArray
    markets: tuple[str, ...]

    @classmethod
    def of(cls, sim: Simulator) -> Layout:
        table = [
            Venue(listing.exchange, listing.symbol, name, COVERAGE[listing.exchange])
            for name, spec in zip(sim.market_names, sim.markets, strict=True)
            for listing in spec.listings
        ]
        sizes = [len(spec.listings) for spec in sim.markets]
        offset = np.concatenate(([0], np.cumsum(sizes)[:-1])).astype(np.int64)
        return cls(event_id_prefix(sim.config), table, offset, sim.market_names)

    def columns(self, simulated: Simulated) -> Chunk:
        """The batch as columns for a bulk load: the same events, field for field, as
        :func:`~purpleflea.sim.history.published` (unscored) gives for each block."""
        blocks = simulated.blocks
        ts = np.concatenate([raw.ts for raw in blocks]).astype(np.int64)
        seq = np.arange(simulated.first_seq, simulated.first_seq + ts.size, dtype=np.int64)
        prefix, offset = self.prefix, self.offset
        columns = EventColumns(
            seq=seq,
            ids=[
                f"{prefix}{n}"
                for raw in blocks
                for n in range(raw.first_n, raw.first_n + raw.ts.size)
            ],
            venue=np.concatenate([offset[raw.market] + raw.listing for raw in blocks]).astype(
                np.int64
            ),
            venues=self.venues,
            long=np.concatenate([raw.side > 0 for raw in blocks]),
            price=np.concatenate([raw.price for raw in blocks]).astype(np.float64),
            quantity=np.concatenate([raw.quantity for raw in blocks]).astype(np.float64),
            ts=ts,
            received_at=received_at(ts, seq),
        )
        return Chunk(columns, self.open_interest(simulated), simulated.hours)

    def open_interest(self, simulated: Simulated) -> list[OpenInterest]:
        """The batch's open interest rows, in the order the sampler kept them."""
        return [row for kept in simulated.open_interest for row in kept.rows(self.markets)]
