"""The registry of venues, built from the ``venues/<name>/`` folders.

Every sub-package whose name does not start with ``_`` is a venue and must expose ``VENUE``, a
:class:`~purpleflea.venues.venue.Venue`; adding a folder is all it takes to add one (copy
``venues/_template/``). Everything outside ``venues/`` that needs a list of exchanges, a
normalizer, a connection, a REST source or a history rule asks here, so no other module names
an exchange.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Mapping
from types import MappingProxyType

import purpleflea.venues as _package
from purpleflea.model import Coverage
from purpleflea.venues.venue import (
    Absent,
    CatalogSource,
    Exchange,
    LiveIdMatch,
    Normalizer,
    PollSource,
    PositionSampling,
    PriceKind,
    RecorderFormat,
    RepairSource,
    SimListing,
    TardisReader,
    Venue,
)


def _discover() -> tuple[Venue, ...]:
    """Every venue folder's ``VENUE``, in folder-name order."""
    found = []
    for info in sorted(pkgutil.iter_modules(_package.__path__), key=lambda i: i.name):
        if not info.ispkg or info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{_package.__name__}.{info.name}")
        venue = getattr(module, "VENUE", None)
        if not isinstance(venue, Venue):
            raise TypeError(f"venues/{info.name}/ does not expose VENUE, a Venue: {venue!r}")
        if venue.name != info.name:
            raise ValueError(f"venues/{info.name}/ names its VENUE {venue.name!r}")
        found.append(venue)
    return tuple(found)


#: Every venue, in folder-name order.
VENUES: tuple[Venue, ...] = _discover()


def _index(venues: tuple[Venue, ...]) -> Mapping[str, Exchange]:
    found: dict[str, Exchange] = {}
    for venue in venues:
        for exchange in venue.exchanges:
            if exchange.id in found:
                raise ValueError(
                    f"exchange id {exchange.id!r} is claimed twice (venues/{venue.name}/)"
                )
            found[exchange.id] = exchange
    return MappingProxyType(found)


#: Every exchange id's :class:`Exchange`, venue by venue.
EXCHANGES: Mapping[str, Exchange] = _index(VENUES)

#: The ids an event's ``exchange`` may carry (besides the simulator's own).
EXCHANGE_IDS: tuple[str, ...] = tuple(EXCHANGES)

#: The stream normalizer of every exchange that has a public liquidation stream.
NORMALIZERS: Mapping[str, Normalizer] = MappingProxyType(
    {e.id: e.normalize for e in EXCHANGES.values() if not isinstance(e.normalize, Absent)}
)


def exchange(exchange_id: str) -> Exchange:
    """The :class:`Exchange` of ``exchange_id``; ``KeyError`` names the known ids."""
    try:
        return EXCHANGES[exchange_id]
    except KeyError:
        raise KeyError(f"unknown exchange {exchange_id!r}; known: {', '.join(EXCHANGES)}") from None


#: The exchange id of the simulator's own events (its truth: every liquidation it made).
SIM_EXCHANGE = "sim"


def coverage_of(exchange_id: str) -> Coverage:
    """The coverage class every event of ``exchange_id`` carries: its venue's, from the
    venue's documented feed semantics; the simulator's own ``sim`` events are ``complete``.
    ``KeyError`` names the known ids."""
    if exchange_id == SIM_EXCHANGE:
        return "complete"
    return exchange(exchange_id).coverage


def price_kind_of(exchange_id: str) -> PriceKind:
    """What ``price`` is on every event of ``exchange_id`` (:data:`~purpleflea.venues.venue.
    PriceKind`): its venue's, from the venue's documented feed; the simulator's own ``sim``
    events are fills (it quotes each forced order at the market, moved by half its impact).
    ``KeyError`` names the known ids."""
    if exchange_id == SIM_EXCHANGE:
        return "fill"
    return exchange(exchange_id).price


def fill_priced() -> frozenset[str]:
    """The exchange ids (``sim`` included) whose events' ``price`` is a fill, the market's
    price: the ones a price move is read from (the cascade alert's ``price_move_pct``)."""
    return frozenset(e for e in (*EXCHANGE_IDS, SIM_EXCHANGE) if price_kind_of(e) == "fill")


def exchanges_covered(coverages: tuple[str, ...]) -> tuple[str, ...]:
    """The exchange ids (``sim`` included) whose events carry one of ``coverages``: what a
    coverage filter means over tables keyed by exchange (the rollups)."""
    return tuple(e for e in (*EXCHANGE_IDS, SIM_EXCHANGE) if coverage_of(e) in coverages)


def market_of(exchange_id: str, symbol: str) -> str | None:
    """Normalized market name (``BTC-PERP``) of an exchange symbol; None if not a market."""
    found = EXCHANGES.get(exchange_id)
    return found.market(symbol) if found is not None else None


def catalog_sources() -> tuple[CatalogSource, ...]:
    """Every venue's instrument-list endpoints."""
    return tuple(
        source
        for venue in VENUES
        if not isinstance(venue.catalog, Absent)
        for source in venue.catalog
    )


def poll_sources() -> tuple[PollSource, ...]:
    """Every venue's open-interest and mark-price endpoints."""
    return tuple(
        source
        for venue in VENUES
        if not isinstance(venue.open_interest, Absent)
        for source in venue.open_interest
    )


def position_sources() -> tuple[PositionSampling, ...]:
    """Every venue that publishes each account's positions."""
    return tuple(venue.positions for venue in VENUES if not isinstance(venue.positions, Absent))


def tardis_readers() -> dict[str, TardisReader]:
    """Readers of Tardis ``liquidations`` rows, by Tardis exchange id."""
    return {
        tardis_id: read
        for venue in VENUES
        if not isinstance(venue.history, Absent)
        for tardis_id, read in venue.history.tardis.items()
    }


def live_id_matches() -> dict[str, LiveIdMatch]:
    """How to find the live copy of a recorded event whose live id a row cannot rebuild
    exactly, by exchange."""
    return {
        rule.exchange: rule
        for venue in VENUES
        if not isinstance(venue.history, Absent)
        for rule in venue.history.live_id_matches
    }


def recorder_formats() -> dict[str, RecorderFormat]:
    """Venues' own recorder CSV formats, by format name (``binance-csv``)."""
    return {
        recorder.name: recorder
        for venue in VENUES
        if not isinstance(venue.history, Absent)
        for recorder in venue.history.recorders
    }


def _repairs() -> Mapping[str, RepairSource | Absent]:
    found: dict[str, RepairSource | Absent] = {}
    for venue in VENUES:
        for exchange in venue.exchanges:
            repair = venue.repair
            if isinstance(repair, RepairSource) and repair.exchange != exchange.id:
                repair = Absent(f"{venue.display_name}'s REST history covers {repair.exchange}")
            found[exchange.id] = repair
    return MappingProxyType(found)


#: Every exchange id's gap-repair source, or :class:`Absent` saying why it has none.
REPAIRS: Mapping[str, RepairSource | Absent] = _repairs()


def _sim_listings() -> Mapping[str, SimListing]:
    listed = [(e.id, e.sim) for e in EXCHANGES.values() if not isinstance(e.sim, Absent)]
    return MappingProxyType(dict(sorted(listed, key=lambda item: item[1].order)))


#: The market simulator's listing of each exchange it simulates, in its own order.
SIM_LISTINGS: Mapping[str, SimListing] = _sim_listings()
