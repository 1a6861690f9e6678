"""The public liquidation connections of every exchange, as :class:`FeedSpec` data.

Each venue's connection spec (``venues/<name>/connection.py``: URL, subscribe messages,
keep-alive, ping answers, watchdog) turns the exchange's live instrument catalog into
:class:`~purpleflea.venues.venue.Connection` rows; :func:`build_feeds` binds each to the
exchange's normalizer and catalog for the enabled exchanges. Everything here is pure: no
sockets, no clock.

Every connection has a name (``<exchange>_<part>``, ...) and :data:`URLS` maps each name to its
real endpoint; ``urls`` overrides any of them (tests point them at loopback). Specs'
normalizers hold the exchange's :class:`~purpleflea.ingest.catalog.LiveCatalog`, and
per-instrument subscriptions are computed on every connect, so catalog refreshes reach both
contract sizes and subscriptions without rebuilding a feed.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import fields

from purpleflea.ingest.catalog import Catalogs, learner
from purpleflea.ingest.feed_spec import FeedSpec, Learn, Normalize
from purpleflea.model import NO_INSTRUMENTS, Catalog, VenueLiquidation
from purpleflea.venues import registry
from purpleflea.venues.venue import Absent, Connection, Normalizer

Urls = Mapping[str, str]


def _has_feed(exchange_id: str) -> bool:
    exchange = registry.EXCHANGES[exchange_id]
    return not isinstance(exchange.connections, Absent) and not isinstance(
        exchange.normalize, Absent
    )


def _connections(exchange_id: str, instruments: Catalog) -> list[Connection]:
    connections = registry.EXCHANGES[exchange_id].connections
    return [] if isinstance(connections, Absent) else connections(instruments)


def available() -> list[str]:
    """Exchanges that have both a connection spec and a normalizer."""
    return [exchange for exchange in registry.EXCHANGES if _has_feed(exchange)]


#: Real endpoint of every connection, by connection name (an empty catalog gives every
#: connection name but the extra ``#n`` ones, which share the first one's endpoint).
URLS: dict[str, str] = {
    connection.name: connection.url
    for exchange in available()
    for connection in _connections(exchange, NO_INSTRUMENTS)
}


def bind(normalizer: Normalizer, instruments: Catalog) -> Normalize:
    """``normalizer`` reading contracts from ``instruments`` (a live, refreshing catalog)."""

    def normalize(frame: bytes | str) -> list[VenueLiquidation]:
        return normalizer(frame, instruments)

    return normalize


def _spec(
    connection: Connection, normalize: Normalize, urls: Urls, learn: Learn | None = None
) -> FeedSpec:
    base = connection.name.split("#", 1)[0]  # "x#2" shares x's endpoint
    data = {f.name: getattr(connection, f.name) for f in fields(connection)}
    data["url"] = urls.get(connection.name) or urls.get(base) or connection.url
    return FeedSpec(**data, normalize=normalize, learn=learn)


def build_feeds(
    catalogs: Catalogs,
    exchanges: Sequence[str] | None = None,
    urls: Urls | None = None,
) -> list[FeedSpec]:
    """The specs of every connection of ``exchanges`` (default: all :func:`available`).

    Raises ``ValueError`` naming an exchange that has no feed or no normalizer.
    """
    wanted = available() if exchanges is None else list(exchanges)
    specs: list[FeedSpec] = []
    for exchange_id in wanted:
        exchange = registry.EXCHANGES.get(exchange_id)
        if exchange is None or isinstance(exchange.connections, Absent):
            raise ValueError(f"no live feed for exchange {exchange_id!r}; known: {available()}")
        if isinstance(exchange.normalize, Absent):
            raise ValueError(f"exchange {exchange_id!r} has no normalizer yet")
        instruments = catalogs.get(exchange_id)
        normalize = bind(exchange.normalize, instruments)
        for c in exchange.connections(instruments):
            learn = None if c.contracts is None else learner(exchange_id, c.contracts, instruments)
            specs.append(_spec(c, normalize, urls or {}, learn))
    return specs


def grown(spec: FeedSpec, running: Collection[str], urls: Urls | None = None) -> list[FeedSpec]:
    """The connections ``spec``'s exchange needs now that are not ``running`` (by name):
    ``spec.more`` rebuilt from the live catalog (dYdX markets, Bybit topics listed past its
    connections' limits), bound to ``spec``'s normalizer. None of a spec without ``more``."""
    if spec.more is None:
        return []
    return [
        _spec(c, spec.normalize, urls or {}, spec.learn if c.contracts is not None else None)
        for c in spec.more()
        if c.name not in running
    ]
