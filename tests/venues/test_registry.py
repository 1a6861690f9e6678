"""The venue registry: every ``venues/<name>/`` folder is a venue that states every part.

A part is either present, of its type and defined in the venue's own folder (in the file of
its fixed role), or :class:`Absent` with a reason. The template folder has every role file
and is never taken for a venue.
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import purpleflea.venues
from purpleflea.ingest import feeds
from purpleflea.model import NO_INSTRUMENTS
from purpleflea.venues import registry
from purpleflea.venues.venue import (
    COVERAGES,
    PRICE_KINDS,
    Absent,
    CatalogSource,
    Connection,
    Exchange,
    History,
    PollSource,
    RepairSource,
    SimListing,
    Venue,
)

VENUES_DIR = Path(purpleflea.venues.__file__).parent
FOLDERS = sorted(
    p.name for p in VENUES_DIR.iterdir() if (p / "__init__.py").exists() and p.name[0] != "_"
)
ROLE_FILES = (
    "__init__.py",
    "constants.py",
    "normalizer.py",
    "connection.py",
    "catalog.py",
    "open_interest.py",
    "history.py",
    "repair.py",
    "positions.py",
    "local_server.py",
    "simulated.py",
)


def _defined_in(function: Callable[..., Any], venue: str, role: str) -> None:
    """``function`` is defined in ``venues/<venue>/<role>.py``: the venue's own code."""
    assert function.__module__ == f"purpleflea.venues.{venue}.{role}", (venue, role, function)


def _absent_or(value: object, check: Callable[[Any], None]) -> None:
    if isinstance(value, Absent):
        assert value.reason.strip(), "an Absent part says why"
    else:
        check(value)


def test_every_folder_is_a_registered_venue() -> None:
    assert [venue.name for venue in registry.VENUES] == FOLDERS
    assert all(isinstance(venue, Venue) for venue in registry.VENUES)


def test_the_registry_knows_the_spec_exchange_ids() -> None:
    # shared/SPEC.md's event schema, less the simulator's own "sim".
    assert set(registry.EXCHANGE_IDS) == {
        "binance_usdm",
        "binance_coinm",
        "bybit",
        "okx",
        "bitmex",
        "deribit",
        "dydx_v4",
        "kraken_futures",
        "bitget",
        "gate",
        "htx",
        "hyperliquid",
    }


@pytest.mark.parametrize("venue", registry.VENUES, ids=lambda v: v.name)
def test_every_venue_states_every_part(venue: Venue) -> None:
    for part in dataclasses.fields(Venue):
        assert getattr(venue, part.name) is not None, part.name
    folder = VENUES_DIR / venue.name
    assert venue.display_name
    assert venue.exchanges
    ids = {exchange.id for exchange in venue.exchanges}

    def check_catalog(sources: tuple[CatalogSource, ...]) -> None:
        assert sources
        assert (folder / "catalog.py").exists()
        for source in sources:
            assert isinstance(source, CatalogSource)
            assert source.exchange in ids
            assert source.url.startswith("https://")
            _defined_in(source.parse, venue.name, "catalog")

    def check_open_interest(sources: tuple[PollSource, ...]) -> None:
        assert sources
        assert (folder / "open_interest.py").exists()
        for source in sources:
            assert isinstance(source, PollSource)
            assert source.exchange in ids
            assert all(url.startswith("https://") for url in source.urls)
            _defined_in(source.parse, venue.name, "open_interest")

    def check_history(history: History) -> None:
        assert isinstance(history, History)
        assert (folder / "history.py").exists()
        assert history.tardis or history.recorders
        for read in history.tardis.values():
            _defined_in(read, venue.name, "history")
        for recorder in history.recorders:
            _defined_in(recorder.read, venue.name, "history")

    def check_repair(source: RepairSource) -> None:
        assert isinstance(source, RepairSource)
        assert source.exchange in ids
        assert source.base.startswith("https://")
        assert source.request("X", 1, 2).startswith("/")
        _defined_in(source.parse, venue.name, "repair")
        _defined_in(source.instruments, venue.name, "repair")

    _absent_or(venue.catalog, check_catalog)
    _absent_or(venue.repair, check_repair)
    _absent_or(venue.open_interest, check_open_interest)
    _absent_or(venue.history, check_history)
    for exchange in venue.exchanges:
        _check_exchange(venue.name, exchange)


def _check_exchange(venue: str, exchange: Exchange) -> None:
    for part in dataclasses.fields(Exchange):
        assert getattr(exchange, part.name) is not None, (exchange.id, part.name)
    assert exchange.display_name
    assert exchange.coverage in COVERAGES
    constants = importlib.import_module(f"purpleflea.venues.{venue}.constants")
    assert exchange.id in vars(constants).values(), "the id is one of the venue's constants"
    assert exchange.coverage in vars(constants).values(), "so is its coverage class"
    assert exchange.price in PRICE_KINDS
    assert exchange.price in vars(constants).values(), "and what its price is"

    def check_normalizer(normalize: Callable[..., Any]) -> None:
        _defined_in(normalize, venue, "normalizer")
        assert normalize(b'{"unrelated": true}', NO_INSTRUMENTS) == []

    def check_connections(connections: Callable[..., list[Connection]]) -> None:
        _defined_in(connections, venue, "connection")
        found = connections(NO_INSTRUMENTS)
        assert found
        assert all(c.exchange == exchange.id for c in found)
        assert all(c.url.startswith("wss://") for c in found)

    def check_sim(listing: SimListing) -> None:
        assert 0 < listing.share < 1
        # The simulator spells symbols as the exchange does, so the venue names them back.
        for coin, bundle in (("BTC", ""), ("ETH", ""), ("PEPE", "1000")):
            assert exchange.market(listing.symbol(coin, bundle)) == f"{coin}-PERP"

    _absent_or(exchange.normalize, check_normalizer)
    _absent_or(exchange.connections, check_connections)
    _absent_or(exchange.sim, check_sim)


def test_coverage_classes_follow_the_spec_examples() -> None:
    coverage = {e.id: e.coverage for e in registry.EXCHANGES.values()}
    # shared/SPEC.md: Binance is a 1-per-symbol-per-second snapshot, Bybit's allLiquidation is
    # complete, Hyperliquid is sampled from watched accounts.
    assert coverage["binance_usdm"] == coverage["binance_coinm"] == "snapshot"
    assert coverage["bybit"] == "complete"
    assert coverage["hyperliquid"] == "sampled"


#: What each exchange's ``price`` is, written out from the evidence each venue's constants cite
#: (shared/EXCHANGES.md trap 5 and the exchanges' own field descriptions), so a venue's kind
#: cannot drift unnoticed.
PRICE_KINDS_DOCUMENTED = {
    "binance_usdm": "fill",  # o.ap, the average fill price
    "binance_coinm": "fill",
    "bybit": "bankruptcy",  # p: "Bankruptcy price"
    "okx": "bankruptcy",  # bkPx
    "htx": "bankruptcy",  # price: "bankruptcy price"
    "bitmex": "order",  # the resting liquidation order's price
    "gate": "order",  # price: "order price"
    "bitget": "liquidation",  # price: "Liquidation price", no more said
    "deribit": "fill",  # trade prices
    "dydx_v4": "fill",
    "kraken_futures": "fill",
    "hyperliquid": "fill",  # px of the liquidation fill
    "sim": "fill",  # the simulator quotes every forced order at the market
}


def test_every_exchange_says_what_its_price_is() -> None:
    assert set(PRICE_KINDS_DOCUMENTED) == {*registry.EXCHANGE_IDS, registry.SIM_EXCHANGE}
    for exchange_id, kind in PRICE_KINDS_DOCUMENTED.items():
        assert registry.price_kind_of(exchange_id) == kind, exchange_id
    assert registry.fill_priced() == {e for e, k in PRICE_KINDS_DOCUMENTED.items() if k == "fill"}
    with pytest.raises(KeyError, match="unknown exchange 'nope'"):
        registry.price_kind_of("nope")


def test_connection_names_are_unique_across_venues() -> None:
    names = [
        c.name
        for e in registry.EXCHANGES.values()
        if not isinstance(e.connections, Absent)
        for c in e.connections(NO_INSTRUMENTS)
    ]
    assert len(names) == len(set(names))
    assert set(names) == set(feeds.URLS)


def test_a_stream_needs_both_a_normalizer_and_a_connection() -> None:
    for exchange in registry.EXCHANGES.values():
        assert isinstance(exchange.normalize, Absent) == isinstance(exchange.connections, Absent)
    assert set(registry.NORMALIZERS) == set(feeds.available())


def test_the_template_has_every_role_file_and_is_no_venue() -> None:
    template = VENUES_DIR / "_template"
    assert sorted(p.name for p in template.glob("*.py")) == sorted(ROLE_FILES)
    for name in ROLE_FILES:
        assert "Fill in" in (template / name).read_text() or name == "__init__.py"
    module = importlib.import_module("purpleflea.venues._template")
    assert not hasattr(module, "VENUE")
    assert "_template" not in [venue.name for venue in registry.VENUES]


def test_every_venue_file_has_a_role() -> None:
    for folder in FOLDERS:
        files = {p.name for p in (VENUES_DIR / folder).glob("*.py")}
        assert files <= set(ROLE_FILES), (folder, files - set(ROLE_FILES))
        assert {"__init__.py", "constants.py", "normalizer.py"} <= files, folder
