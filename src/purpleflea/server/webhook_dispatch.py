"""Webhook delivery: the async driver of :mod:`purpleflea.server.webhook_policy`.

One :class:`Dispatcher` runs on the node that sequences events (role ``all`` or ``ingest``:
only one such node is active per deployment), so each item is delivered once, not once per
API node. It reads the bus like a stream client and, for each webhook whose filter wants the
item, appends it to that webhook's bounded queue; that never waits on a network, so a slow
receiver holds up nothing but its own queue. One worker per webhook sends its queue in seq
order, each delivery retried as the policy decides; a delivery that fails every attempt, or
finds the queue full, becomes a dead letter in the shared store, readable and replayable by
the webhook's account (:func:`replay_dead_letters`, from any API node).

Each webhook's ``settled_seq`` (everything at or below it delivered, dead-lettered or
filtered out) is saved every ``reload_s``. A webhook loaded with a settled seq behind the bus
(made on another node moments ago, or after a restart, a crash or a standby taking over)
first catches up from the history store, in seq order, then follows the bus: nothing
published after its creation is skipped. What is still queued at a graceful stop is written
to the dead letters (error ``not delivered before the server stopped``) and settled; after a
crash it is sent again from the last saved settled seq. Delivery is therefore at least once:
a receiver deduplicates by ``X-Purpleflea-Event-Id``.

When the bus cuts the dispatcher's subscription (more than ``bus_buffer_bytes`` of frames
waiting: a burst, a stalled loop), it subscribes again and offers what was published in the
gap from the history store, by seq (:meth:`Dispatcher._fill_gap`), before going on live.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections import Counter, deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from purpleflea.bus.base import (
    Bus,
    Message,
    Subscription,
    SubscriptionClosed,
    cascade_frame,
    liquidation_frame,
)
from purpleflea.bus.stored import stored_items
from purpleflea.clock import now_ms
from purpleflea.model import CascadeAlert, Liquidation
from purpleflea.server.filters import BadSubscription, StreamFilter, parse_filter
from purpleflea.server.webhook_policy import Outcome, WebhookSettings, decide
from purpleflea.server.webhook_sender import Sender
from purpleflea.server.writes import WriteHealth
from purpleflea.store.base import Store
from purpleflea.store.webhooks import DeadLetter, Webhook, WebhookStore

log = logging.getLogger("purpleflea.webhooks")

_STOPPED = "not delivered before the server stopped"
_IDLE = "no webhooks"
_WRITER = "webhook list"  # its name in the store's outage log lines and in /v1/health
_CATCH_UP_PAGE = 1_000
_CHANNELS = ("liquidations", "cascades")


@dataclass(frozen=True, slots=True)
class _Pending:
    seq: int
    body: bytes


@dataclass
class _Hook:
    """One webhook's live state on the delivering node. ``high``: the highest seq it has
    considered (queued or filtered out); live items at or below it are not queued again.
    Until ``ready`` (its catch-up from the history is queued) its worker does not send."""

    webhook: Webhook
    wanted: StreamFilter
    high: int
    queue: deque[_Pending] = field(default_factory=deque)
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None
    saved: int = 0

    def settled(self, seen: int) -> int:
        """Every seq at or below this is settled for the webhook: before the first item
        still queued (it may be in flight), else everything the dispatcher has seen."""
        if not self.ready.is_set():
            return self.webhook.settled_seq
        return self.queue[0].seq - 1 if self.queue else max(seen, self.high)


def _frame(item: Liquidation | CascadeAlert) -> bytes:
    """The stream frame of a stored item: the same bytes the bus carried for it."""
    return liquidation_frame(item) if isinstance(item, Liquidation) else cascade_frame(item)


def webhook_filter(filters: dict[str, Any], known_exchanges: Iterable[str]) -> StreamFilter:
    """A webhook's stored filters as a stream filter (the stream's own parser: one language).

    Raises :class:`~purpleflea.server.filters.BadSubscription`, also for ``since_seq``: a
    webhook receives what happens from its creation on.
    """
    wanted = parse_filter(filters, known_exchanges=known_exchanges)
    if wanted.since_seq is not None:
        raise BadSubscription("since_seq is for streams: a webhook gets items from now on")
    return wanted


class Dispatcher:
    """Delivers bus items to webhooks; see the module docstring."""

    def __init__(
        self,
        store: WebhookStore,
        bus: Bus,
        sender: Sender,
        settings: WebhookSettings,
        *,
        history: Store,
        position: Callable[[], int],
        known_exchanges: Iterable[str],
        rand: Callable[[], float] = random.random,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        writes: WriteHealth | None = None,
    ) -> None:
        self.store = store
        self.bus = bus
        #: Webhooks whose attempt raised, logged once each (:meth:`_send_failed`).
        self._send_errors_logged: set[str] = set()
        self.history = history
        self.position = position
        self.sender = sender
        self.settings = settings
        self.known_exchanges = tuple(known_exchanges)
        self.counters: Counter[str] = Counter()
        self._rand = rand
        self._sleep = sleep
        # The store's outage state (the server's own, so /v1/health names it): an outage is
        # logged once when the list's reload starts failing and once when it works again.
        self.writes = writes if writes is not None else WriteHealth()
        self._hooks: dict[str, _Hook] = {}
        self._letters: list[DeadLetter] = []
        self._letters_ready = asyncio.Event()
        self._subscription: Subscription | None = None
        self._subscribed = asyncio.Event()
        # Every item at or below this was offered already or published before the current
        # subscription; every item above it will be offered.
        self._seen = 0

    # -- the list of webhooks ---------------------------------------------------------------

    @property
    def webhook_ids(self) -> set[str]:
        return set(self._hooks)

    async def reload(self) -> None:
        """Bring the delivering set in line with the store (made or deleted on any node)."""
        stored = {webhook.id: webhook for webhook in await self.store.webhooks()}
        for webhook_id in set(self._hooks) - set(stored):
            hook = self._hooks.pop(webhook_id)
            self.counters["discarded"] += len(hook.queue)  # its owner deleted it
            if hook.task is not None:
                hook.task.cancel()
        added: list[_Hook] = []
        for webhook_id, webhook in stored.items():
            if webhook_id in self._hooks:
                continue
            try:
                wanted = webhook_filter(webhook.filters, self.known_exchanges)
            except BadSubscription as exc:
                self.counters["bad_filter"] += 1
                log.warning("webhook %s: stored filter invalid now (%s): skipped", webhook_id, exc)
                continue
            hook = _Hook(webhook, wanted, high=0, saved=webhook.settled_seq)
            self._hooks[webhook_id] = hook
            added.append(hook)
        self._follow_bus()
        for hook in added:
            # Live items above what was seen come from the bus; the rest from the history.
            hook.high = max(self._seen, hook.webhook.settled_seq)
            hook.task = asyncio.create_task(self._work(hook), name=f"webhook {hook.webhook.id}")

    def _follow_bus(self) -> None:
        """Be subscribed to the bus exactly while there are webhooks (a server without any
        pays nothing per item). Subscribing here, before the route that made the webhook
        answers, means every item published after that answer reaches it."""
        if self._hooks and self._subscription is None:
            self._subscribe()
            self._seen = max(self._seen, self.position())
        elif not self._hooks and self._subscription is not None:
            self._subscription.close(_IDLE)
            self._subscription = None
            self._subscribed.clear()

    def _subscribe(self) -> None:
        self._subscription = self.bus.subscribe(self.settings.bus_buffer_bytes)
        self._subscribed.set()

    async def _reload_every(self) -> None:
        while True:
            await asyncio.sleep(self.settings.reload_s)
            try:
                await self.save_settled()
                await self.reload()
            except Exception as exc:  # the store is away for a moment: keep the current list
                self.counters["reload_failures"] += 1
                self.writes.failed(_WRITER, exc, holding="webhooks deliver from the list held")
            else:
                self.writes.succeeded(_WRITER)

    async def save_settled(self) -> None:
        """Persist how far each webhook is settled, so that a restart or a standby taking
        over resumes there (what was queued is sent again: at least once)."""
        moved = {}
        for webhook_id, hook in self._hooks.items():
            settled = hook.settled(self._seen)
            if settled > hook.saved:
                moved[webhook_id] = settled
        await self.store.save_settled(moved)
        for webhook_id, settled in moved.items():
            if webhook_id in self._hooks:
                self._hooks[webhook_id].saved = settled

    async def _history(
        self, after: int, upto: int, channels: Iterable[str]
    ) -> AsyncIterator[list[Liquidation | CascadeAlert]]:
        """The stored items of ``channels`` with ``after < seq <= upto``, in seq order, a page
        at a time (events and alerts merged, :data:`_CATCH_UP_PAGE` of each read)."""
        channels = frozenset(channels)
        while after < upto:
            page = await stored_items(
                self.history,
                after,
                upto,
                _CATCH_UP_PAGE,
                events="liquidations" in channels,
                alerts="cascades" in channels,
            )
            if not page:
                return
            yield page
            after = page[-1].seq

    async def _catch_up(self, hook: _Hook) -> None:
        """Queue what the webhook wants from the history between its settled seq and the
        first item the bus brings it: items published while no node was delivering, or
        before this node loaded a webhook made on another. What does not fit in the queue goes
        to the dead letters as if it had been full; beyond the dead-letter bound too, the
        catch-up stops there (counted as ``catch_up_truncated``)."""
        limit = self.settings.queue + self.settings.dead_letters
        found: list[_Pending] = []
        truncated = False
        pages = self._history(hook.webhook.settled_seq, hook.high, hook.wanted.channels)
        async for page in pages:
            for item in page:
                if hook.wanted.wants(item):
                    if len(found) == limit:
                        truncated = True
                        break
                    found.append(_Pending(item.seq, _frame(item)))
            if truncated:
                break
        self.counters["caught_up"] += len(found)
        waiting = [*found, *hook.queue]
        hook.queue = deque(waiting[: self.settings.queue])
        for pending in waiting[self.settings.queue :]:
            self._overflow(hook, pending)
        if truncated:
            self.counters["catch_up_truncated"] += 1
            log.warning("webhook %s: catch-up stopped at %d items", hook.webhook.id, limit)

    async def _fill_gap(self, reason: str) -> None:
        """The bus cut the subscription (``reason``): subscribe again, and offer what was
        published until then and not offered yet, from the history store (everything
        published is stored first), before the new subscription's items. Those it brings
        again (a NATS bus's, published at the seam) are not offered twice: each webhook's
        ``high`` passes them. One log line per gap."""
        self.counters["bus_dropped"] += 1
        after = upto = self._seen  # everything at or below was offered
        offered = 0
        if self._hooks:  # else the next webhook subscribes and catches up by itself
            self._subscribe()
            upto = self.position()  # everything at or below is stored; the rest comes live
            offered = await self._offer_history(upto)
            # The new subscription brings what is above ``upto`` (on a NATS bus, perhaps
            # some below too: each webhook passes those now).
            self._seen = max(self._seen, upto)
            for hook in self._hooks.values():
                hook.high = max(hook.high, upto)
        log.warning(
            "webhook dispatcher lost its bus subscription (%s): %d items published meanwhile "
            "(%s) were read back from the history and offered to the webhooks",
            reason,
            offered,
            f"seqs {after + 1}-{upto}" if upto > after else "no seq",
        )

    async def _offer_history(self, upto: int) -> int:
        """Offer the stored items above what was offered up to ``upto``, in pages; a failed
        read is tried again from where it stopped. Returns how many were offered."""
        offered = 0
        delay = 1.0
        while True:
            try:
                async for page in self._history(self._seen, upto, _CHANNELS):
                    for item in page:
                        self._offer(item.seq, item, None)
                        offered += 1
                        self.counters["bus_backfilled"] += 1
                return offered
            except Exception as exc:  # the store is away for a moment: read it again
                self.counters["bus_backfill_failures"] += 1
                log.warning(
                    "webhook dispatcher: reading seqs %d-%d back from the history failed "
                    "(%s); trying again in %.0f s",
                    self._seen + 1,
                    upto,
                    exc,
                    delay,
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)

    # -- intake -------------------------------------------------------------------------------

    def offer(self, message: Message) -> None:
        """Queue ``message`` for every webhook that wants it (never waits)."""
        payload = message.payload
        if isinstance(payload, Liquidation | CascadeAlert):
            self._offer(message.seq, payload, message.data)

    def _offer(self, seq: int, item: Liquidation | CascadeAlert, data: bytes | None) -> None:
        """``data``: the item's frame, None to encode it when a webhook wants it."""
        for hook in self._hooks.values():
            if seq <= hook.high:
                continue  # caught up from the history already
            hook.high = seq
            if not hook.wanted.wants(item):
                continue
            if data is None:
                data = _frame(item)
            if len(hook.queue) >= self.settings.queue:
                self._overflow(hook, _Pending(seq, data))
                continue
            hook.queue.append(_Pending(seq, data))
            hook.wake.set()
        self._seen = max(self._seen, seq)

    def _overflow(self, hook: _Hook, item: _Pending) -> None:
        error = f"queue full: {self.settings.queue} deliveries were waiting for this receiver"
        if self.sender.over_budget(hook.webhook):
            # Not the receiver's slowness: every webhook aimed at its address shares one
            # budget (webhook_budget), and this one's turn had not come.
            self.counters["overflow_budget"] += 1
            budget = self.sender.budget.limits
            error += (
                f" (its destination {self.sender.destination(hook.webhook)} is over its "
                f"budget of {budget.rate:g} deliveries/s for all webhooks aimed there)"
            )
        else:
            self.counters["overflow"] += 1
        self._dead_letter(hook.webhook.id, item, attempts=0, error=error)

    async def run(self) -> None:
        """Follow the bus until cancelled (a server background task)."""
        helpers = [asyncio.create_task(self._write_dead_letters())]
        try:
            while True:
                try:
                    await self.reload()
                    break
                except Exception as exc:  # the store is not reachable yet: try again
                    self.counters["reload_failures"] += 1
                    self.writes.failed(_WRITER, exc, holding="no webhook is delivered yet")
                    await asyncio.sleep(self.settings.reload_s)
            self.writes.succeeded(_WRITER)
            helpers.append(asyncio.create_task(self._reload_every()))
            while True:
                await self._subscribed.wait()
                subscription = self._subscription
                assert subscription is not None
                try:
                    while True:
                        self.offer(await subscription.next())
                except SubscriptionClosed as exc:
                    if exc.reason != _IDLE and self._subscription is subscription:
                        # A stalled event loop, a burst larger than the buffer: the items
                        # published in the gap are read back from the history.
                        self._subscription = None
                        self._subscribed.clear()
                        await self._fill_gap(exc.reason)
        finally:
            if self._subscription is not None:
                self._subscription.close()
                self._subscription = None
            tasks = [*helpers, *(h.task for h in self._hooks.values() if h.task is not None)]
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task

    # -- delivery -----------------------------------------------------------------------------

    async def _work(self, hook: _Hook) -> None:
        if hook.webhook.settled_seq < hook.high:
            try:
                await self._catch_up(hook)
            except Exception:
                self.counters["catch_up_failures"] += 1
                log.exception("webhook %s: catching up from the history failed", hook.webhook.id)
        hook.ready.set()
        while True:
            while not hook.queue:
                hook.wake.clear()
                await hook.wake.wait()
            item = hook.queue[0]  # stays queued until settled: a stop dead-letters it
            attempts, outcome = await self._deliver(hook.webhook, item)
            hook.queue.popleft()
            if outcome is None:
                self.counters["delivered"] += 1
            else:
                self.counters["dead_lettered"] += 1
                self._dead_letter(
                    hook.webhook.id, item, attempts=attempts, error=outcome.describe()
                )

    async def _deliver(self, webhook: Webhook, item: _Pending) -> tuple[int, Outcome | None]:
        """Attempts made, and the last outcome when it failed (None: delivered)."""
        attempt = 0
        while True:
            attempt += 1
            try:
                outcome = await self.sender.send(webhook, item.seq, item.body)
            except Exception as exc:
                # Unforeseen (a URL the client cannot use raised before it was refused at
                # creation): raised, it ended this webhook's task, and the webhook went
                # silent. A failed attempt instead, not retried; logged once per webhook.
                outcome = self._send_failed(webhook, exc)
            decision = decide(self.settings, attempt, outcome, self._rand)
            if decision.delivered:
                return attempt, None
            if decision.retry_in is None:
                if outcome.refused:
                    self.counters["refused"] += 1
                return attempt, outcome
            self.counters["retried"] += 1
            await self._sleep(decision.retry_in)

    def _send_failed(self, webhook: Webhook, exc: Exception) -> Outcome:
        self.counters["send_errors"] += 1
        if webhook.id not in self._send_errors_logged:
            self._send_errors_logged.add(webhook.id)
            log.exception("webhook %s: an attempt failed in this server; dead-lettered", webhook.id)
        return Outcome(error=f"internal error: {type(exc).__name__}: {exc}"[:500], refused=True)

    # -- dead letters -------------------------------------------------------------------------

    def _dead_letter(self, webhook_id: str, item: _Pending, *, attempts: int, error: str) -> None:
        self._letters.append(
            DeadLetter(
                webhook_id=webhook_id,
                seq=item.seq,
                body=item.body,
                attempts=attempts,
                error=error,
                failed_at=now_ms(),
            )
        )
        self._letters_ready.set()

    async def _flush(self) -> None:
        letters, self._letters = self._letters, []
        try:
            dropped = await self.store.add_dead_letters(letters, keep=self.settings.dead_letters)
        except BaseException:
            self._letters[:0] = letters  # kept for the next try (or the final flush)
            raise
        self.counters["dead_letters_dropped"] += dropped

    async def _write_dead_letters(self) -> None:
        """One writer for every webhook's dead letters: workers never wait on the store."""
        while True:
            await self._letters_ready.wait()
            self._letters_ready.clear()
            try:
                await self._flush()
            except Exception:
                self.counters["dead_letter_write_failures"] += 1
                log.exception("writing %d webhook dead letters failed", len(self._letters))
                await asyncio.sleep(1.0)
                self._letters_ready.set()

    async def close(self) -> None:
        """After :meth:`run` stopped: what is still queued becomes dead letters and the
        webhooks are settled up to here; then the sender closes (a server closer, run before
        the store closes). A webhook still catching up keeps its settled seq: the next start
        catches up again instead."""
        settled: dict[str, int] = {}
        for webhook_id, hook in self._hooks.items():
            if not hook.ready.is_set():
                continue
            for item in hook.queue:
                self._dead_letter(webhook_id, item, attempts=0, error=_STOPPED)
            hook.queue.clear()
            settled[webhook_id] = hook.settled(self._seen)
        self._hooks.clear()
        try:
            if self._letters:
                await self._flush()
            await self.store.save_settled(settled)
        except Exception:
            log.exception("webhook state lost at shutdown: %d dead letters", len(self._letters))
        await self.sender.close()

    # -- observability ------------------------------------------------------------------------

    def queued(self) -> int:
        return sum(len(hook.queue) for hook in self._hooks.values())

    def metrics(self) -> list[tuple[str, str, str, list[tuple[str, float]]]]:
        """``(name, kind, help, samples)`` for ``/v1/metrics``."""
        return [
            (
                "webhook_deliveries_total",
                "counter",
                "Webhook deliveries and attempts by outcome.",
                [(f'{{outcome="{k}"}}', float(v)) for k, v in sorted(self.counters.items())],
            ),
            ("webhooks", "gauge", "Webhooks being delivered.", [("", float(len(self._hooks)))]),
            ("webhook_queued", "gauge", "Deliveries waiting.", [("", float(self.queued()))]),
        ]
