"""Instrument catalogs: the contract facts normalizers need, fetched, refreshed and cached.

Each exchange that reports liquidations in contracts publishes its contract list over public
REST. Its venue's ``catalog.py`` says where and turns a response body into
:class:`~purpleflea.model.Instrument` rows (tested with documented responses); :data:`SOURCES`
collects them from the registry.
:class:`Catalogs` keeps the current catalog of every exchange: it starts from the last snapshot
it saved (or the snapshot bundled with the package, so a start with no network still
normalizes the major contracts correctly), refreshes from REST, and saves what it fetched.

Exchanges that report coins or USD but subscribe per instrument also have a catalog: the list
of symbols to subscribe to (contract size 1: one coin for linear, one USD for inverse). A
venue that needs none says why in its ``VENUE.catalog``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterator, Mapping
from importlib import resources
from pathlib import Path

import httpx
import msgspec

from purpleflea.ingest.paging import fetch_pages
from purpleflea.model import Instrument
from purpleflea.venues import registry
from purpleflea.venues._catalog import CatalogError
from purpleflea.venues.venue import CatalogSource

log = logging.getLogger("purpleflea.ingest.catalog")

Parser = Callable[[bytes], list[Instrument]]
#: One public REST endpoint listing an exchange's contracts (each venue's ``catalog.py``).
Source = CatalogSource
#: Every venue's instrument-list endpoints.
SOURCES: tuple[Source, ...] = registry.catalog_sources()

__all__ = [
    "SOURCES",
    "CatalogError",
    "Catalogs",
    "LiveCatalog",
    "Parser",
    "Source",
    "load_snapshot",
]


class LiveCatalog(Mapping[str, Instrument]):
    """One exchange's catalog whose contents are replaced on refresh.

    Normalizers hold this mapping, so a refresh reaches them without rebuilding feeds.
    """

    def __init__(self, rows: Mapping[str, Instrument] | None = None) -> None:
        self._rows: dict[str, Instrument] = dict(rows or {})

    def __getitem__(self, symbol: str) -> Instrument:
        return self._rows[symbol]

    def __iter__(self) -> Iterator[str]:
        return iter(self._rows)

    def __len__(self) -> int:
        return len(self._rows)

    def replace(self, rows: Mapping[str, Instrument]) -> None:
        self._rows = dict(rows)


_snapshot_decoder = msgspec.json.Decoder(dict[str, list[Instrument]])


def load_snapshot(path: Path | None = None) -> dict[str, list[Instrument]]:
    """Instruments by exchange from ``path``, or from the snapshot bundled with the package."""
    if path is None:
        data = resources.files("purpleflea.venues").joinpath("instruments.json").read_bytes()
    else:
        data = path.read_bytes()
    return _snapshot_decoder.decode(data)


class Catalogs:
    """The current instrument catalog of every exchange, kept fresh from REST."""

    def __init__(self, cache_path: Path | None = None) -> None:
        self.cache_path = cache_path
        self._by_exchange: dict[str, LiveCatalog] = {}
        self._fetched: set[str] = set()  # exchanges whose catalog this process fetched
        snapshot = load_snapshot()
        if cache_path is not None and cache_path.exists():
            try:
                snapshot.update(load_snapshot(cache_path))
            except (OSError, msgspec.ValidationError, msgspec.DecodeError) as exc:
                log.warning(
                    "instrument cache %s unreadable, using the bundled one: %s", cache_path, exc
                )
        for exchange, rows in snapshot.items():
            self.get(exchange).replace({row.symbol: row for row in rows})

    def get(self, exchange: str) -> LiveCatalog:
        """The live catalog of ``exchange`` (empty until something is known)."""
        return self._by_exchange.setdefault(exchange, LiveCatalog())

    async def refresh(
        self,
        client: httpx.AsyncClient,
        sources: tuple[Source, ...] = SOURCES,
        *,
        within: float | None = None,
    ) -> dict[str, str]:
        """Fetch every source; returns ``{url: error}`` for the ones that failed.

        An exchange's catalog is replaced only when all of its sources answered, so a partial
        failure never drops instruments we knew. ``within``: the seconds the fetches may take;
        a source that has not answered by then has failed, and the others are used (a wait
        around the whole refresh instead dropped every answer with the slowest one's).
        """
        results = await asyncio.gather(*(self._fetch(client, s, within) for s in sources))
        errors: dict[str, str] = {}
        fresh: dict[str, dict[str, Instrument]] = {}
        failed: set[str] = set()
        for source, result in zip(sources, results, strict=True):
            if isinstance(result, str):
                errors[source.url] = result
                failed.add(source.exchange)
            else:
                fresh.setdefault(source.exchange, {}).update((i.symbol, i) for i in result)
        for exchange, rows in fresh.items():
            if exchange not in failed and rows:
                live = self.get(exchange)
                _tell_resized(exchange, live, rows, mid_session=exchange in self._fetched)
                live.replace(rows)
                self._fetched.add(exchange)
        if fresh and self.cache_path is not None:
            self._save()
        return errors

    async def _fetch(
        self, client: httpx.AsyncClient, source: Source, within: float | None = None
    ) -> list[Instrument] | str:
        """Every page's instruments, or the error of the first page that failed (a list read
        in part would drop the instruments of the pages missed): an HTTP error, the venue's
        error inside an HTTP 200 body (``source.error``), which would otherwise read as a
        page listing nothing, or no answer within ``within`` seconds."""
        try:
            async with asyncio.timeout(within):
                pages = await fetch_pages(client, source.url, source.next_page)
            found = []
            for response in pages:
                response.raise_for_status()
                said = source.error(response.content) if source.error is not None else None
                if said is not None:
                    raise CatalogError(f"{source.exchange} answered {response.url}: {said}")
                found.extend(source.parse(response.content))
            return found
        except (httpx.HTTPError, CatalogError) as exc:
            return f"{type(exc).__name__}: {exc}"
        except TimeoutError:
            return f"no answer within {within:g} s"

    def _save(self) -> None:
        assert self.cache_path is not None
        snapshot = {
            exchange: list(catalog.values()) for exchange, catalog in self._by_exchange.items()
        }
        self.cache_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.cache_path.with_suffix(".tmp")
        tmp.write_bytes(msgspec.json.encode(snapshot))
        tmp.replace(self.cache_path)


def learner(
    exchange: str,
    contracts: Callable[[bytes | str, Mapping[str, Instrument]], list[Instrument] | None],
    live: LiveCatalog,
) -> Callable[[bytes | str], bool]:
    """Reads each frame of ``exchange``'s feed with ``contracts`` and merges the contracts a
    push changes into its live catalog at once (OKX's ``instruments``: a contract's new value,
    a contract listed since the last fetch; BitMEX's XBTUSD instrument row: the XBT price of
    its quanto contracts). A size changed is logged as a WARNING (the venue changed it since
    we last read it); the rest of the catalog is kept. True for a frame that was such a push."""

    def learn(frame: bytes | str) -> bool:
        pushed = contracts(frame, live)
        if pushed is None:
            return False
        rows = {row.symbol: row for row in pushed}
        changed = resized(live, rows)
        if changed:
            said = ", ".join(
                f"{was.symbol} {was.contract_size:g} {was.kind} -> {now.contract_size:g} {now.kind}"
                for was, now in changed[:10]
            )
            more = f" and {len(changed) - 10} more" if len(changed) > 10 else ""
            log.warning(
                "instrument catalog: %s pushed a new contract size for %d contract(s): %s%s; "
                "applied from now on",
                exchange,
                len(changed),
                said,
                more,
            )
        if rows:
            live.replace({**live, **rows})
        return True

    return learn


def resized(
    old: Mapping[str, Instrument], new: Mapping[str, Instrument]
) -> list[tuple[Instrument, Instrument]]:
    """``(before, now)`` of each contract both list whose size or kind differs: a venue
    changing a contract's value (OKX's ``ctVal`` adjustments, a Gate multiplier)."""
    return [
        (old[symbol], row)
        for symbol, row in new.items()
        if symbol in old
        and (old[symbol].contract_size != row.contract_size or old[symbol].kind != row.kind)
    ]


def _tell_resized(
    exchange: str,
    old: Mapping[str, Instrument],
    new: Mapping[str, Instrument],
    *,
    mid_session: bool,
) -> None:
    """Log the contracts a fetch found resized. Mid-session (the catalog was fetched before by
    this process) it is a WARNING: the venue changed a contract's value since, and its
    liquidations received in between were sized with the old value (their quantity and USD
    off by the ratio): no liquidation push carries the contract value (OKX's ``instruments``
    channel does, and :func:`learner` applies its pushes as they come). At the
    first fetch, it only says the bundled or cached snapshot was out of date."""
    changed = resized(old, new)
    if not changed:
        return
    said = ", ".join(
        f"{was.symbol} {was.contract_size:g} {was.kind} -> {now.contract_size:g} {now.kind}"
        for was, now in changed[:10]
    )
    more = f" and {len(changed) - 10} more" if len(changed) > 10 else ""
    if mid_session:
        log.warning(
            "instrument catalog: %s changed the contract size of %d contract(s) since the last "
            "fetch: %s%s; their liquidations received since then were sized with the old one",
            exchange,
            len(changed),
            said,
            more,
        )
    else:
        log.info(
            "instrument catalog: %s's saved snapshot had an old contract size for %d "
            "contract(s): %s%s",
            exchange,
            len(changed),
            said,
            more,
        )
