"""The storage interface: what the server needs from a history store.

Every published :class:`~purpleflea.model.Liquidation` is appended with the ``seq`` the
ingest pipeline assigned; ``seq`` is the primary key and the resume cursor, and ``id`` is unique
so a replayed exchange event is stored once. Beside the events, a store keeps the open interest
the cascade engine was told (:class:`OpenInterest`: a market's total, at most one row per market
and minute, written when it moved), so a backtest scores history with the size term the live
engine had. Backends: :mod:`purpleflea.store.sqlite` (default) and PostgreSQL (scale-out).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, Literal, Protocol

import msgspec

from purpleflea.model import HISTORY_EXCHANGE, CascadeAlert, Liquidation, MarketSnapshot
from purpleflea.venues.registry import EXCHANGE_IDS, SIM_EXCHANGE, coverage_of

if TYPE_CHECKING:
    from purpleflea.store.replay import ReplayPage

Interval = Literal["1m", "1h", "1d"]
GroupBy = Literal["market", "exchange", "side"]
#: A history page's order: by ``seq`` (storage) or by ``ts`` (event time), newest first.
Order = Literal["seq", "ts"]

INTERVAL_MS: dict[str, int] = {"1m": 60_000, "1h": 3_600_000, "1d": 86_400_000}

#: The stored columns of an event in table order, with their SQLite and PostgreSQL types: the
#: one list both SQL backends build their table, inserts and selects from. ``coverage`` is
#: last because stores written before it get it appended (see :func:`coverage_backfill`).
EVENT_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("seq", "INTEGER PRIMARY KEY", "bigint PRIMARY KEY"),
    ("id", "TEXT NOT NULL UNIQUE", "text NOT NULL UNIQUE"),
    ("exchange", "TEXT NOT NULL", "text NOT NULL"),
    ("symbol", "TEXT NOT NULL", "text NOT NULL"),
    ("market", "TEXT NOT NULL", "text NOT NULL"),
    ("side", "TEXT NOT NULL", "text NOT NULL"),
    ("price", "REAL NOT NULL", "float8 NOT NULL"),
    ("quantity", "REAL NOT NULL", "float8 NOT NULL"),
    ("size_usd", "REAL NOT NULL", "float8 NOT NULL"),
    ("ts", "INTEGER NOT NULL", "bigint NOT NULL"),
    ("received_at", "INTEGER NOT NULL", "bigint NOT NULL"),
    ("cascade_score", "INTEGER NOT NULL", "integer NOT NULL"),
    ("coverage", "TEXT NOT NULL", "text NOT NULL"),
)

#: The stored columns of an event, in table order.
COLUMNS: tuple[str, ...] = tuple(name for name, _, _ in EVENT_COLUMNS)


def event_table(dialect: Literal["sqlite", "postgres"]) -> str:
    """``CREATE TABLE IF NOT EXISTS liquidations (...)`` in ``dialect``."""
    index = 1 if dialect == "sqlite" else 2
    body = ",\n    ".join(f"{column[0]} {column[index]}" for column in EVENT_COLUMNS)
    return f"CREATE TABLE IF NOT EXISTS liquidations (\n    {body}\n);"


def coverage_case() -> str:
    """An SQL expression of an event row's coverage computed from its ``exchange``: what a
    store written before events carried ``coverage`` fills in (or reads, when read-only)."""
    cases = " ".join(f"WHEN '{e}' THEN '{coverage_of(e)}'" for e in (*EXCHANGE_IDS, SIM_EXCHANGE))
    # An exchange no venue knows any more: its feed's class is unknown, the cautious claim is
    # that it was not complete.
    return f"CASE exchange {cases} ELSE 'snapshot' END"


def coverage_backfill() -> str:
    """An ``UPDATE`` giving every stored event of a store written before events carried
    ``coverage`` its exchange's class (rows the migration added with the placeholder '')."""
    return f"UPDATE liquidations SET coverage = {coverage_case()} WHERE coverage = ''"


def row_to_event(row: tuple[Any, ...]) -> Liquidation:
    """An event from a row of :data:`COLUMNS` (in that order)."""
    # Unpacked by hand: every history read and backtest builds one per row, and this is ~8x
    # cheaper than a dict of keyword arguments (2.2 -> 0.3 us).
    (
        seq,
        id_,
        exchange,
        symbol,
        market,
        side,
        price,
        quantity,
        size_usd,
        ts,
        received,
        score,
        coverage,
    ) = row
    return Liquidation(
        id=id_,
        seq=seq,
        exchange=exchange,
        symbol=symbol,
        market=market,
        side=side,
        price=price,
        quantity=quantity,
        size_usd=size_usd,
        ts=ts,
        received_at=received,
        coverage=coverage,
        cascade_score=score,
    )


class Query(msgspec.Struct, frozen=True, kw_only=True):
    """Filters for a history query; every field is optional and they combine with AND."""

    markets: tuple[str, ...] = ()
    exchanges: tuple[str, ...] = ()
    sides: tuple[str, ...] = ()
    coverages: tuple[str, ...] = ()
    min_usd: float = 0.0
    start_ms: int | None = None  # ts >= start
    end_ms: int | None = None  # ts < end
    #: Cursor: only events with seq below this (pages walk back in storage order).
    before_seq: int | None = None
    limit: int = 100
    #: ``seq``: the last stored first (the default); ``ts``: the latest event time first,
    #: ties by seq (both stores walk their ts index: no sort of the matching rows).
    order: Order = "seq"
    #: Cursor of ``order="ts"``: only events whose (ts, seq) is below this pair.
    before_key: tuple[int, int] | None = None


class Page(msgspec.Struct, frozen=True, kw_only=True):
    """One page of a history query, newest first; ``next_cursor`` fetches the next page: the
    last event's seq (``order="seq"``, the query's ``before_seq``), or its ``"<ts>_<seq>"``
    (``order="ts"``, the query's ``before_key``: :func:`time_cursor`)."""

    events: list[Liquidation]
    next_cursor: int | str | None

    @classmethod
    def of(cls, events: list[Liquidation], more: bool, order: Order) -> Page:
        """The page of ``events`` (at most the limit) in ``order``; ``more``: events follow."""
        if not more or not events:
            return cls(events=events, next_cursor=None)
        last = events[-1]
        return cls(
            events=events, next_cursor=f"{last.ts}_{last.seq}" if order == "ts" else last.seq
        )


def time_cursor(cursor: str) -> tuple[int, int]:
    """The (ts, seq) pair of an ``order="ts"`` page's ``next_cursor``; ValueError naming it
    when it is not one."""
    ts, _, seq = cursor.partition("_")
    if ts.isascii() and ts.isdigit() and seq.isascii() and seq.isdigit():
        return int(ts), int(seq)
    raise ValueError(f"a cursor of order=ts is <ts>_<seq>, a page's next_cursor; got {cursor!r}")


class Bucket(msgspec.Struct, frozen=True, kw_only=True):
    """One aggregate row: events and notional in one interval for one group.

    ``count`` and ``size_usd`` are measured (what the feeds sent); ``est_count`` and
    ``est_size_usd`` add an estimate of what throttled (``snapshot``) feeds hid, never less
    than the measured figures (method: :mod:`purpleflea.engine.coverage`), and
    ``est_calibration`` says what that estimate rests on: ``none`` (no snapshot event, nothing
    estimated), ``complete_venues`` (a ratio fitted on complete venues of the same market and
    hour, for every snapshot event), ``prior_only`` (no complete venue had events in any of
    the bucket's market-hours: a flat prior, about twice the snapshot feeds' measure, not
    validated on real data) or ``mixed`` (some of each). ``start_ms`` is
    the UTC interval's start; a bucket at the edge of a window that starts or ends inside its
    interval counts only the window's part of it.
    """

    start_ms: int
    group: str
    count: int
    size_usd: float
    long_usd: float
    short_usd: float
    est_count: int
    est_size_usd: float
    est_calibration: str


class OpenInterest(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """A market's open interest at ``ts`` (ms): the sum over its listings of what the cascade
    engine was told, which is what the engine sizes a cascade by.

    Rows are kept only when the total or the mark moved, or went stale
    (:class:`~purpleflea.store.oi_sampler.OpenInterestSampler`); a backtest replays each with
    ``CascadeEngine.set_open_interest(market, open_interest_usd)``, and with its heatmap on,
    as a snapshot of the market at ``mark_price`` (0: not recorded, as in stores written
    before marks were kept).
    """

    ts: int
    market: str
    open_interest_usd: float
    mark_price: float = 0.0

    def snapshot(self) -> MarketSnapshot:
        """The row as the snapshot of its market's one instrument (``history``, the market's
        name): how a backtest, and a restart rebuilding its heatmaps, replay it."""
        mark = self.mark_price
        return MarketSnapshot(
            exchange=HISTORY_EXCHANGE,
            symbol=self.market,
            market=self.market,
            ts=self.ts,
            mark_price=mark if mark > 0 else 1.0,  # no mark: only the open interest is used
            open_interest=self.open_interest_usd / mark if mark > 0 else 0.0,
            open_interest_usd=self.open_interest_usd,
        )


#: Open interest is kept at this resolution: at most one row per market per minute.
OI_MINUTE_MS = 60_000

#: The stored columns of an open interest row, in table order (both SQL backends).
OI_COLUMNS = ("minute", "market", "ts", "open_interest_usd", "mark_price")


def open_interest_rows(
    rows: Sequence[OpenInterest],
) -> list[tuple[int, str, int, float, float]]:
    """``rows`` as table rows of :data:`OI_COLUMNS`, the latest of each market and minute.

    Deduplicated here because PostgreSQL refuses to upsert one key twice in a statement.
    """
    latest: dict[tuple[int, str], OpenInterest] = {}
    for row in rows:
        key = (row.ts // OI_MINUTE_MS * OI_MINUTE_MS, row.market)
        kept = latest.get(key)
        if kept is None or row.ts >= kept.ts:
            latest[key] = row
    return [
        (minute, market, row.ts, row.open_interest_usd, row.mark_price)
        for (minute, market), row in latest.items()
    ]


def second_ranges(seconds: Iterable[int]) -> list[tuple[int, int]]:
    """The ``ts // 1000`` seconds of a batch's events as ms ranges ``[lo, hi)``, one per run of
    consecutive seconds, ascending: where an append reads which of its seconds stored events
    already carried (a rollup's ``seconds`` counts a second once however its events were
    batched). A live batch (~50 ms) is one range; an import's, one per run."""
    ranges: list[tuple[int, int]] = []
    for second in sorted(set(seconds)):
        if ranges and ranges[-1][1] == second * 1000:
            ranges[-1] = (ranges[-1][0], second * 1000 + 1000)
        else:
            ranges.append((second * 1000, second * 1000 + 1000))
    return ranges


#: The history store's schema this release writes (SQLite's ``user_version``, PostgreSQL's
#: ``purpleflea_schema`` row). A release that changes what older ones would misread or
#: overwrite raises it; a store stamped higher than this is refused (:func:`check_schema`).
#: 0: a store written before the stamp, brought up to date and stamped on open.
SCHEMA_VERSION = 1


class StoreTooNew(ValueError):
    """The store was written by a newer release, whose schema this one does not know."""


def check_schema(found: int, where: str) -> None:
    """Refuse a store whose stamped schema ``found`` is newer than :data:`SCHEMA_VERSION`:
    an older release would write rows the newer one misreads (or drop what it added)."""
    if found > SCHEMA_VERSION:
        raise StoreTooNew(
            f"{where} was written by a newer purpleflea (store schema {found}; this release "
            f"knows up to {SCHEMA_VERSION}): upgrade purpleflea to open it"
        )


class StoreUnavailable(ConnectionError):
    """The store's database cannot be reached now (PostgreSQL down, restarting, cut off).
    The message names the store, its password redacted; the server answers a request that
    needs it with 503 ``store_unavailable`` instead of an unexplained 500."""


class Store(Protocol):
    """A history store. Implementations are safe to call from one event loop."""

    #: Whether all the work of a read runs in this process, on threads whose CPU
    #: :mod:`purpleflea.cputime` counts (SQLite's reader threads): then a request is charged
    #: for that CPU and not for its wall time, which a loaded machine stretches. False where
    #: another server does the work (PostgreSQL): its wall time stands in for it.
    reads_metered: bool

    async def append(self, events: Sequence[Liquidation]) -> list[Liquidation]:
        """Persist ``events`` (ascending seq); returns those that were new (by id)."""
        ...

    async def append_cascades(self, alerts: Sequence[CascadeAlert]) -> None:
        """Persist cascade alerts (ascending seq, sharing the events' seq space)."""
        ...

    async def last_seq(self) -> int:
        """The highest stored seq of events and cascade alerts, 0 when empty."""
        ...

    async def cascades_since(self, seq: int, limit: int = 1000) -> list[CascadeAlert]:
        """Cascade alerts with seq > ``seq``, ascending: the resume path of ``cascades``."""
        ...

    async def event_times(self) -> tuple[int, int] | None:
        """The earliest and the latest event time (``ts``) stored; None when there is none."""
        ...

    async def cascades(
        self, *, active: bool | None = None, markets: Sequence[str] = (), limit: int = 100
    ) -> list[CascadeAlert]:
        """The latest state of each cascade, newest first; ``active`` filters by status."""
        ...

    async def since(self, seq: int, limit: int = 1000) -> list[Liquidation]:
        """Events with seq > ``seq``, ascending, at most ``limit``: the resume path."""
        ...

    async def replay(self, after: int, query: Query, limit: int = 1000) -> ReplayPage:
        """``query``'s events with seq > ``after``, ascending, filtered by the database and
        reading at most ``limit`` index entries (a stream's resume:
        :mod:`purpleflea.store.replay`); its seq bounds and ``limit`` are not used."""
        ...

    async def query(self, query: Query) -> Page:
        """Filtered events, newest first, paged by seq."""
        ...

    async def aggregate(
        self,
        interval: Interval,
        group_by: GroupBy,
        query: Query,
        *,
        estimate: bool = True,
    ) -> list[Bucket]:
        """Counts and notional per interval and group, ascending time; ``estimate=False``:
        the measure alone (the ``est_`` fields repeat it), for a caller that reads only it."""
        ...

    async def append_open_interest(self, rows: Sequence[OpenInterest]) -> None:
        """Keep ``rows``, one per market and minute of ``ts``: of two rows in the same
        minute (in this batch or across batches) the one with the later ``ts`` stays."""
        ...

    async def open_interest(
        self, start_ms: int, end_ms: int, *, after: OpenInterest | None = None, limit: int = 10_000
    ) -> list[OpenInterest]:
        """Rows with ``start_ms <= ts < end_ms`` in ``(ts, market)`` order, at most
        ``limit``; ``after`` (the previous page's last row) continues a paged read."""
        ...

    async def close(self) -> None: ...
