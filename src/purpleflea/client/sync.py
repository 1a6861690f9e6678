"""The blocking client: :class:`LiquidationClient`'s methods, same parameters, no ``await``.

Each method has the async one's keyword parameters, written out so editors and ``help()`` show
them; ``tests/client/test_sync_signatures.py`` fails when the two drift apart.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import queue
import threading
import weakref
from collections.abc import Coroutine, Generator, Iterable, Iterator, Sequence
from types import TracebackType
from typing import Any, Literal, TypeVar, overload

from purpleflea.client._config import Names, Time
from purpleflea.client.aio import HISTORY_ALL_PAGE, LiquidationClient
from purpleflea.client.types import Bucket, Coverage, HistoryOrder, HistoryPage
from purpleflea.model import CascadeAlert, Heatmap, Liquidation
from purpleflea.positions import MeasuredMap

T = TypeVar("T")

#: Items a blocking stream holds for a slow reader before its background thread waits.
STREAM_BUFFER = 10_000

#: The most events one handoff carries (a few ms of the SDK's decoding at most): the first
#: of a burst reaches the caller's thread without waiting for the rest.
_HANDOFF_MAX = 1_000
#: What the stream's thread hands the caller's: the events read in one go, or its end.
_Handed = list[Liquidation | CascadeAlert] | BaseException | None


class _Handoff(queue.Queue[_Handed]):
    """The blocking stream's buffer between its thread and the caller's, bounded in items
    (:data:`STREAM_BUFFER`, passed by at most one handoff), not in handoffs.

    The stream's thread hands over every event it read in one go (a batch frame, every frame
    the socket held) as one list: one lock and one wakeup of the caller's thread for them
    all. Handed over one by one, 40-event frames cost 2.9-3.2 us of CPU an event against
    1.0-1.2 for the async stream; now 1.3-1.5 (``bench/sdk_receive.py --sync``,
    bench/results/e2e.md)."""

    def _init(self, maxsize: int) -> None:
        super()._init(maxsize)
        self._held = 0

    def _qsize(self) -> int:
        return self._held

    def _put(self, item: _Handed) -> None:
        self._held += len(item) if isinstance(item, list) else 1
        super()._put(item)

    def _get(self) -> _Handed:
        item = super()._get()
        self._held -= len(item) if isinstance(item, list) else 1
        return item


#: Seconds the caller's thread waits at a time for an answer or an item. Never for good: a
#: process's SIGINT (Ctrl-C) may be handed to any of its threads (Linux tries the main one
#: first, macOS does not), and when one of the client's took it, a caller blocked without a
#: timeout never ran the KeyboardInterrupt: the script hung until killed (on Windows a lock
#: wait without a timeout ignores Ctrl-C altogether). Waking this often lets it run.
WAKE_S = 0.25


class SyncLiquidationClient:
    """A blocking wrapper for scripts and notebooks: the same methods, no ``await``.

    Its calls run on a background thread's event loop, so they work where an event loop runs
    already (a Jupyter notebook); ``stream()`` runs the async stream on a thread of its own and
    yields its items. Use it as ``with SyncLiquidationClient() as liq:`` or call
    :meth:`close` when done.
    """

    def __init__(
        self,
        api_key: str | None = None,
        base_url: str | Sequence[str] | None = None,
        *,
        timeout: float = 10.0,
    ) -> None:
        self._client = LiquidationClient(api_key, base_url, timeout=timeout)
        # The loop runs on a thread of its own: the caller's thread may run an event loop
        # already (a Jupyter notebook's does), where run_until_complete raises "Cannot run
        # the event loop while another loop is running".
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="purpleflea-sync-client", daemon=True
        )
        self._thread.start()
        # Also run when the client is garbage collected unclosed (a notebook cell run again
        # makes a new one): its thread would otherwise run for the process's life, holding
        # its kept-alive connections open.
        self._close = weakref.finalize(self, _shut_down, self._client, self._loop, self._thread)

    def _run(self, work: Coroutine[Any, Any, T]) -> T:
        future = asyncio.run_coroutine_threadsafe(work, self._loop)
        try:
            while True:
                try:
                    return future.result(WAKE_S)
                except concurrent.futures.TimeoutError:
                    # Done: the call's own TimeoutError, or a call that finished just after
                    # the slice ended (this thread waited for the GIL while the loop's thread
                    # finished it): its own outcome either way, never the slice's timeout.
                    if future.done():
                        return future.result()
        except BaseException:
            future.cancel()  # interrupted (Ctrl-C): stop the call rather than leave it running
            raise

    def history(
        self,
        *,
        markets: Names = None,
        exchanges: Names = None,
        sides: Names = None,
        coverages: Names = None,
        min_usd: float | None = None,
        start: Time = None,
        end: Time = None,
        cursor: int | str | None = None,
        limit: int = 100,
        market: Names = None,
        exchange: Names = None,
        side: Names = None,
        order: HistoryOrder = "seq",
    ) -> HistoryPage:
        """See :meth:`LiquidationClient.history`."""
        return self._run(
            self._client.history(
                markets=markets,
                exchanges=exchanges,
                sides=sides,
                coverages=coverages,
                min_usd=min_usd,
                start=start,
                end=end,
                cursor=cursor,
                limit=limit,
                market=market,
                exchange=exchange,
                side=side,
                order=order,
            )
        )

    def history_all(
        self,
        *,
        markets: Names = None,
        exchanges: Names = None,
        sides: Names = None,
        coverages: Names = None,
        min_usd: float | None = None,
        start: Time = None,
        end: Time = None,
        cursor: int | str | None = None,
        limit: int = HISTORY_ALL_PAGE,
        market: Names = None,
        exchange: Names = None,
        side: Names = None,
        order: HistoryOrder = "seq",
    ) -> Iterator[Liquidation]:
        """See :meth:`LiquidationClient.history_all`: every matching event, newest first,
        fetched ``limit`` per request (default 1,000, the server's largest page) as the loop
        goes."""
        # Paged here rather than by stepping the async generator: a loop left half way would
        # leave that generator open on this client's event loop.
        while True:
            page = self.history(
                markets=markets,
                exchanges=exchanges,
                sides=sides,
                coverages=coverages,
                min_usd=min_usd,
                start=start,
                end=end,
                cursor=cursor,
                limit=limit,
                market=market,
                exchange=exchange,
                side=side,
                order=order,
            )
            yield from page.events
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    def aggregate(
        self,
        *,
        interval: str = "1h",
        group_by: str = "market",
        markets: Names = None,
        exchanges: Names = None,
        sides: Names = None,
        coverages: Names = None,
        min_usd: float | None = None,
        start: Time = None,
        end: Time = None,
        market: Names = None,
        exchange: Names = None,
        side: Names = None,
        estimate: bool = True,
    ) -> list[Bucket]:
        """See :meth:`LiquidationClient.aggregate`."""
        return self._run(
            self._client.aggregate(
                interval=interval,
                group_by=group_by,
                markets=markets,
                exchanges=exchanges,
                sides=sides,
                coverages=coverages,
                min_usd=min_usd,
                start=start,
                end=end,
                market=market,
                exchange=exchange,
                side=side,
                estimate=estimate,
            )
        )

    def coverage(
        self,
        *,
        exchanges: Names = None,
        start: Time = None,
        end: Time = None,
        exchange: Names = None,
    ) -> Coverage:
        """See :meth:`LiquidationClient.coverage`."""
        return self._run(
            self._client.coverage(exchanges=exchanges, start=start, end=end, exchange=exchange)
        )

    def markets(self) -> list[dict[str, Any]]:
        """See :meth:`LiquidationClient.markets`."""
        return self._run(self._client.markets())

    def cascades(
        self,
        *,
        status: str = "all",
        markets: Names = None,
        limit: int = 100,
        market: Names = None,
    ) -> list[CascadeAlert]:
        """See :meth:`LiquidationClient.cascades`."""
        return self._run(
            self._client.cascades(status=status, markets=markets, limit=limit, market=market)
        )

    def stream(
        self,
        *,
        min_usd: float = 0.0,
        markets: Names = None,
        exchanges: Names = None,
        sides: Names = None,
        coverages: Names = None,
        channels: str | Iterable[str] = ("liquidations",),
        since_seq: int | None = None,
        max_backoff: float = 10.0,
        idle_timeout: float = 35.0,
        give_up_after: float | None = None,
        market: Names = None,
        exchange: Names = None,
        side: Names = None,
    ) -> SyncStream:
        """Blocking iterator over a live stream, the parameters as
        :meth:`LiquidationClient.stream`: ``for item in liq.stream(...)``, or held as the async
        one is, ``with liq.stream(...) as stream: for item in stream``. Breaking out of the
        loop or leaving the block closes it."""
        return SyncStream(
            self._items(
                min_usd=min_usd,
                markets=markets,
                exchanges=exchanges,
                sides=sides,
                coverages=coverages,
                channels=channels,
                since_seq=since_seq,
                max_backoff=max_backoff,
                idle_timeout=idle_timeout,
                give_up_after=give_up_after,
                market=market,
                exchange=exchange,
                side=side,
            )
        )

    def _items(self, **stream: Any) -> Generator[Liquidation | CascadeAlert | None, None, None]:
        """The stream's items, read by a thread of their own (:meth:`stream`); first None,
        once it is subscribed (what :meth:`SyncStream.__enter__` waits for)."""
        live = self._client.stream(**stream)
        items = _Handoff(STREAM_BUFFER)
        read: list[Liquidation | CascadeAlert] = []

        def hand_over() -> None:
            """Everything read since the last handoff; run once the stream waits (the
            iteration below runs without a pause while the stream has events in hand), or
            when :data:`_HANDOFF_MAX` are read."""
            nonlocal read
            if read:
                handed, read = read, []
                items.put(handed)

        async def pump() -> None:
            loop = asyncio.get_running_loop()
            try:
                async with live:
                    items.put(None)  # subscribed: every event from here on will come
                    async for item in live:
                        if not read:
                            loop.call_soon(hand_over)
                        read.append(item)
                        if len(read) >= _HANDOFF_MAX:
                            hand_over()
            except BaseException as exc:  # handed to the caller's thread, after the events
                hand_over()
                items.put(exc)

        # Its own thread and event loop: a stream keeps reading (heartbeats, reconnects)
        # between the caller's next()s, and must not hold up this client's other calls.
        loop = asyncio.new_event_loop()
        task = loop.create_task(pump())
        thread = threading.Thread(target=_run_to_end, args=(loop, task), daemon=True)
        thread.start()
        try:
            while True:
                try:
                    item = items.get(timeout=WAKE_S)
                except queue.Empty:
                    continue
                if isinstance(item, BaseException):
                    raise item
                if item is None:
                    yield None
                    continue
                yield from item
        finally:
            # The caller left the loop (break, error, garbage collection): close the stream
            # now rather than when its next item arrives, which on a quiet market is never.
            loop.call_soon_threadsafe(task.cancel)
            while thread.is_alive():
                _discard(items)  # a pump blocked on a full buffer must see the cancel
                thread.join(0.05)
            loop.close()

    @overload
    def heatmap(
        self,
        market: str,
        *,
        low: float | None = None,
        high: float | None = None,
        bucket: float | None = None,
        source: Literal["estimated"] = "estimated",
    ) -> Heatmap: ...

    @overload
    def heatmap(
        self,
        market: str,
        *,
        low: float | None = None,
        high: float | None = None,
        bucket: float | None = None,
        source: Literal["measured"],
    ) -> MeasuredMap: ...

    def heatmap(
        self,
        market: str,
        *,
        low: float | None = None,
        high: float | None = None,
        bucket: float | None = None,
        source: Literal["estimated", "measured"] = "estimated",
    ) -> Heatmap | MeasuredMap:
        """See :meth:`LiquidationClient.heatmap`."""
        return self._run(
            self._client._heatmap(market, low=low, high=high, bucket=bucket, source=source)
        )

    def create_webhook(
        self,
        url: str,
        *,
        secret: str | None = None,
        channels: str | Iterable[str] = ("liquidations",),
        min_usd: float = 0.0,
        markets: Names = None,
        exchanges: Names = None,
        sides: Names = None,
        coverages: Names = None,
        market: Names = None,
        exchange: Names = None,
        side: Names = None,
    ) -> dict[str, Any]:
        """See :meth:`LiquidationClient.create_webhook`."""
        return self._run(
            self._client.create_webhook(
                url,
                secret=secret,
                channels=channels,
                min_usd=min_usd,
                markets=markets,
                exchanges=exchanges,
                sides=sides,
                coverages=coverages,
                market=market,
                exchange=exchange,
                side=side,
            )
        )

    def webhooks(self) -> list[dict[str, Any]]:
        """See :meth:`LiquidationClient.webhooks`."""
        return self._run(self._client.webhooks())

    def delete_webhook(self, webhook_id: str) -> None:
        """See :meth:`LiquidationClient.delete_webhook`."""
        self._run(self._client.delete_webhook(webhook_id))

    def dead_letters(self, webhook_id: str, *, limit: int = 100) -> dict[str, Any]:
        """See :meth:`LiquidationClient.dead_letters`."""
        return self._run(self._client.dead_letters(webhook_id, limit=limit))

    def replay_dead_letters(self, webhook_id: str, *, limit: int = 100) -> dict[str, Any]:
        """See :meth:`LiquidationClient.replay_dead_letters`."""
        return self._run(self._client.replay_dead_letters(webhook_id, limit=limit))

    def close(self) -> None:
        """Close the HTTP connections and this client's event loop (once; again is harmless)."""
        self._close()

    def __enter__(self) -> SyncLiquidationClient:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def _shut_down(
    client: LiquidationClient, loop: asyncio.AbstractEventLoop, thread: threading.Thread
) -> None:
    """Close ``client``'s connections on ``loop``, then stop ``loop`` and its ``thread``."""
    if threading.current_thread() is thread:
        # Collected on its own loop's thread (a callback dropped the last reference): that
        # thread cannot wait for itself, so the loop just stops after this callback.
        loop.stop()
        return
    with contextlib.suppress(Exception):  # closing must not fail: the connections go anyway
        asyncio.run_coroutine_threadsafe(client.aclose(), loop).result()
    loop.call_soon_threadsafe(loop.stop)
    thread.join()
    loop.close()


class SyncStream(Iterator[Liquidation | CascadeAlert]):
    """A blocking stream (:meth:`SyncLiquidationClient.stream`): iterate it, in a ``with``
    block or not; closing it (leaving the block, :meth:`close`, breaking out of a ``for``
    over ``liq.stream(...)`` itself) ends the connection at once.

    Entering the ``with`` block connects and subscribes, as ``async with`` does: a refusal
    (bad key, bad filter) is raised there, and every event published once the block is
    entered is delivered. Iterated without ``with``, it connects at the first ``next()``."""

    def __init__(self, items: Generator[Liquidation | CascadeAlert | None, None, None]) -> None:
        self._items = items
        self._subscribed = False

    def __next__(self) -> Liquidation | CascadeAlert:
        while True:
            item = next(self._items)
            if item is not None:
                return item
            self._subscribed = True  # None, the first thing it yields: it subscribed

    def __enter__(self) -> SyncStream:
        if not self._subscribed:
            try:
                next(self._items)  # None once subscribed (always first), or raises why not
            except BaseException:
                self.close()
                raise
            self._subscribed = True
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self._items.close()


def _run_to_end(loop: asyncio.AbstractEventLoop, task: asyncio.Task[None]) -> None:
    with contextlib.suppress(asyncio.CancelledError):  # cancelled before it started
        loop.run_until_complete(task)
    loop.run_until_complete(loop.shutdown_asyncgens())


def _discard(items: queue.Queue[Any]) -> None:
    with contextlib.suppress(queue.Empty):
        while True:
            items.get_nowait()
