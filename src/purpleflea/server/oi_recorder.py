"""Keeps the open interest the cascade engine was told, for backtests to replay.

Snapshots arrive ~1,700 a minute live (every listing, every minute). :meth:`note` hands each to
an :class:`~purpleflea.store.oi_sampler.OpenInterestSampler` (a dict assignment, nothing else
on the snapshot path); once a minute :meth:`run` takes the market totals that moved by 0.5 % or
are 15 minutes old (at most one row per market, often far fewer) and writes them in batches of
``batch`` rows, so the event loop is held no longer than by one batch of events. Two samples
landing in one minute of snapshot time are one stored row, the later (the store upserts by
market and minute): the earlier value is then replayed from the later ts, still never early.
A failed write is counted (``oi_write_errors``) and reported to ``writes`` (which logs an
outage once, and health and readiness read); its rows are held (one batch at most, older ones
dropped and counted as ``oi_rows_dropped``: open interest history is worth less than the
process that serves events) and written again every ``retry_s`` (5 s) until the store takes
them. (They used to be dropped and the next try waited for the next minute's flush, so
``/v1/ready`` answered 503 for up to a minute after a full disk had room again.)
"""

from __future__ import annotations

import asyncio
from collections import Counter

from purpleflea.model import MarketSnapshot
from purpleflea.server.writes import WriteHealth
from purpleflea.store.base import OI_MINUTE_MS, OpenInterest, Store
from purpleflea.store.oi_sampler import OpenInterestSampler


class OpenInterestRecorder:
    """Samples the open interest the engine was told per market and writes it to ``store``."""

    def __init__(
        self,
        store: Store,
        *,
        counters: Counter[str] | None = None,
        batch: int = 2_000,
        sampler: OpenInterestSampler | None = None,
        writes: WriteHealth | None = None,
    ) -> None:
        if batch < 1:
            raise ValueError(f"OpenInterestRecorder batch must be at least 1, got {batch}")
        self.store = store
        self.counters: Counter[str] = counters if counters is not None else Counter()
        self.batch = batch
        self.sampler = sampler if sampler is not None else OpenInterestSampler()
        self.writes = writes if writes is not None else WriteHealth()
        self._flushing: asyncio.Future[None] | None = None
        #: The snapshot-time minute of the newest snapshot noted (-1: none yet), and the rows
        #: sampled when the snapshots crossed into a new one, waiting for the next flush.
        self._minute = -1
        self._due: list[OpenInterest] = []
        self._held: list[OpenInterest] = []  # rows a failed write left, tried again first

    def note(self, snapshot: MarketSnapshot) -> None:
        """A snapshot whose open interest the engine was just told (never blocks or raises).

        Sampled once a minute of the snapshots' own time, as they cross into the next: a
        simulator faster than real time sends many minutes per wall-clock minute, and a sample
        per wall minute kept one of them (a restart's warm then sized every cascade of the
        run against the last value, backtests too)."""
        self._cross(snapshot.ts)
        self.sampler.note(snapshot)

    def retire(self, market: str, instrument: str, ts: int) -> None:
        """A listing the engine was told is gone at ``ts`` (:meth:`OpenInterestSampler.retire`;
        never blocks or raises)."""
        self._cross(ts)
        self.sampler.retire(market, instrument, ts)

    def _cross(self, ts: int) -> None:
        """Sample the minute before ``ts``'s when ``ts`` is in a newer one."""
        minute = ts // OI_MINUTE_MS
        if minute > self._minute:
            if self._minute >= 0:
                self._due += self.sampler.sample()
            self._minute = minute

    @property
    def failing(self) -> bool:
        return bool(self._held)

    async def flush(self) -> None:
        """Sample now and write the rows kept, after those a failed write held (what arrives
        meanwhile waits for the next flush)."""
        rows = [*self._held, *self._due, *self.sampler.sample()]
        self._held, self._due = [], []
        for start in range(0, len(rows), self.batch):
            chunk = rows[start : start + self.batch]
            try:
                await self.store.append_open_interest(chunk)
            except Exception as exc:
                self.counters["oi_write_errors"] += 1
                self._hold(chunk)
                self.writes.failed(
                    "open interest", exc, holding=f"{len(self._held)} rows held for the next try"
                )
            else:
                self.counters["oi_rows_written"] += len(chunk)
                self.writes.succeeded("open interest")
            await asyncio.sleep(0)  # let events through between batches

    def _hold(self, chunk: list[OpenInterest]) -> None:
        held = [*self._held, *chunk]
        dropped = max(0, len(held) - self.batch)
        if dropped:
            self.counters["oi_rows_dropped"] += dropped
        self._held = held[dropped:]

    async def run(self, interval_s: float = 60.0, retry_s: float = 5.0) -> None:
        """Flush every ``interval_s`` (every ``retry_s`` while a failed write holds rows)
        until cancelled (then :meth:`close` writes the rest)."""
        while True:
            await asyncio.sleep(min(interval_s, retry_s) if self.failing else interval_s)
            # Shielded: a shutdown cancelling this loop mid-flush must not drop the rows that
            # flush already took; close() waits for it instead.
            self._flushing = asyncio.ensure_future(self.flush())
            await asyncio.shield(self._flushing)

    async def close(self) -> None:
        """Finish a flush in progress and sample once more (before the store closes)."""
        if self._flushing is not None:
            await self._flushing
        await self.flush()
