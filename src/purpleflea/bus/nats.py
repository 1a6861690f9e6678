"""The scale-out bus: NATS JetStream between ingest nodes and API nodes.

Roles. An ingest node runs the tracker with a :class:`NatsBus` as its bus: every published
event or cascade alert becomes one JetStream message (subjects ``<prefix>.liq.<exchange>.
<market>`` and ``<prefix>.cascade.<market>``, body = the stream's wire frame ``Message.data``,
headers ``Pf-Channel`` and ``Pf-Seq``). An API node calls :meth:`NatsBus.start`: one ordered
consumer per node reads the stream and fans each message out locally with exactly
:class:`~purpleflea.bus.local.LocalBus` semantics (each subscriber's buffer bounded in bytes; a
slow one is closed with a ``slow consumer: ...`` reason and never slows the others).

How ``seq`` works across nodes (design (a)): the ingest node's tracker assigns ``seq``, appends
to the shared PostgreSQL store, and only then publishes, so *every seq on the bus is already in
the store*. JetStream's own stream sequence is an internal position, never shown to clients;
``Pf-Seq`` carries ours. We did not make ``seq`` the stream sequence because that is only known
after publishing, which would break "persist before publish" (a client could hold a seq the
store does not have). Consequences:

- Resume on any API node: a client's ``since_seq`` is replayed from the store, then the live
  tail continues from the bus, skipping seqs already replayed (``purpleflea.server.feed``). The
  store has everything the bus ever carried, so nothing is missed on any node.
- Double publish: ``Nats-Msg-Id`` is the event id (``<alert id>@<seq>`` for cascade alerts, whose
  id is shared by every step of one cascade); a retried publish inside the stream's duplicate
  window is dropped by JetStream, and API nodes also drop any seq at or below the last one they
  fanned out.
- Lost publish (the ingest node died between persist and publish, or NATS refused): the
  ingest node publishes what it stored and the bus refused from the store, in seq order,
  once the bus takes messages again (its next start, from :meth:`NatsBus.newest_seq`;
  :class:`~purpleflea.server.pipeline.Pipeline`). Should a message still show a jump in seq
  first, an API node given the store backfills the missing seqs from it before fanning out
  that message, so local subscribers never see a hole. (Seqs can also skip legitimately, for
  events the store already had; the backfill then finds none.)
- One sequencer: only one ingest node may assign seqs at a time (a second one's seqs collide
  in the store, whose append then fails loudly).

``NatsBus.start(after_seq=N)`` restarts the node's tail right after our seq ``N``, found in the
stream by binary search over its retained messages (the store fills in what the stream no
longer retains).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence

import msgspec
import nats
import nats.errors
import nats.js.errors
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription as NatsSubscription
from nats.js import JetStreamContext
from nats.js.api import (
    ConsumerConfig,
    DeliverPolicy,
    DiscardPolicy,
    PubAck,
    RetentionPolicy,
    StorageType,
    StreamConfig,
)

from purpleflea.bus.base import DEFAULT_BUFFER_BYTES, Message
from purpleflea.bus.local import LocalBus, LocalSubscription
from purpleflea.bus.stored import stored_messages
from purpleflea.model import CascadeAlert, Liquidation
from purpleflea.outage import OutageRecord, describe
from purpleflea.store.base import Store
from purpleflea.store.factory import redacted

log = logging.getLogger("purpleflea.bus.nats")

HEADER_CHANNEL = "Pf-Channel"
HEADER_SEQ = "Pf-Seq"
HEADER_MSG_ID = "Nats-Msg-Id"

_PUBLISH_ATTEMPTS = 3
_BACKFILL_PAGE = 1_000
#: Waits between tries of a backfill read that failed (about 8 s in all), before giving up.
_BACKFILL_RETRIES_S = (0.2, 0.5, 1.0, 2.0, 4.0)
# Characters a NATS subject token cannot hold (separator, wildcards, whitespace).
_NOT_IN_TOKEN = re.compile(r"[.*>\s]")


class _LiquidationFrame(msgspec.Struct, frozen=True, tag="liquidation", tag_field="type"):
    data: Liquidation


class _CascadeFrame(msgspec.Struct, frozen=True, tag="cascade", tag_field="type"):
    data: CascadeAlert


_frame_decoder = msgspec.json.Decoder(_LiquidationFrame | _CascadeFrame)


def decode_message(data: bytes, headers: dict[str, str] | None) -> Message:
    """The :class:`Message` a JetStream message carries; raises ``ValueError`` if malformed."""
    try:
        frame = _frame_decoder.decode(data)
    except msgspec.DecodeError as exc:
        raise ValueError(f"bus message is not a liquidation or cascade frame: {exc}") from None
    payload = frame.data
    default_channel = "liquidations" if isinstance(payload, Liquidation) else "cascades"
    headers = headers or {}
    channel = headers.get(HEADER_CHANNEL, default_channel)
    raw_seq = headers.get(HEADER_SEQ)
    try:
        seq = int(raw_seq) if raw_seq is not None else payload.seq
    except ValueError:
        raise ValueError(
            f"bus message header {HEADER_SEQ} is not an integer: {raw_seq!r}"
        ) from None
    return Message(channel, seq, payload, data)


#: What the NATS client reports while the server is away (a dropped socket, refused
#: reconnects): part of one outage, not news each time.
_CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    TimeoutError,
    nats.errors.UnexpectedEOF,
    nats.errors.StaleConnectionError,
    nats.errors.ConnectionClosedError,
    nats.errors.NoServersError,
)


class OutageLog:
    """The NATS client's callbacks: one WARNING when the connection is lost and one when it
    is back, instead of the client library's default, an ERROR with a traceback for every
    reconnect attempt (two clients a node, every 2 s: 721 lines in a 24 s outage). Other
    errors the client reports are one WARNING line each. ``counters`` gets
    ``connection_lost`` and ``reconnect_errors``."""

    def __init__(self, what: str, counters: Counter[str], clock: Callable[[], float]) -> None:
        self.what = what
        self.counters = counters
        #: The connection's outage: its failures are the loss and each reconnect error after.
        self.outage = OutageRecord(clock)
        #: The client, once connected: its own close is not an outage.
        self.client: Client | None = None

    def options(self) -> dict[str, Callable[..., Awaitable[None]]]:
        """The keyword arguments of ``nats.connect`` that route its reports here."""
        return {
            "error_cb": self.error,
            "disconnected_cb": self.disconnected,
            "reconnected_cb": self.reconnected,
        }

    async def error(self, exc: Exception) -> None:
        if isinstance(exc, _CONNECTION_ERRORS):
            error = describe(exc)
            if self.outage.failed(error):
                self._lost(error)
            else:
                self.counters["reconnect_errors"] += 1
            return
        log.warning("%s: %s", self.what, describe(exc))

    async def disconnected(self) -> None:
        closing = self.client is not None and self.client.is_closed
        if not self.outage.failing and not closing:
            self.outage.failed("disconnected")
            self._lost("disconnected")

    async def reconnected(self) -> None:
        self._back("reconnected")

    def connected(self, client: Client) -> None:
        """The first connection is made (after failed attempts, if NATS was down)."""
        self.client = client
        self._back("connected")

    def _back(self, how: str) -> None:
        ended = self.outage.recovered()
        if ended is None:
            return
        log.warning(
            "%s: %s after %.1f s (%d failed attempts)",
            self.what,
            how,
            ended.seconds,
            self.counters["reconnect_errors"],
        )
        self.counters["reconnect_errors"] = 0

    def _lost(self, why: str) -> None:
        if self.client is None:  # still starting: NATS is not up yet
            log.warning(
                "%s: NATS not reachable yet (%s); this node waits for it, retrying every 2 s",
                self.what,
                why,
            )
            return
        self.counters["connection_lost"] += 1
        log.warning(
            "%s: connection lost (%s); reconnecting every 2 s, the next line says when it is back",
            self.what,
            why,
        )


def _headers(message: Message, msg_id: str) -> dict[str, str]:
    return {HEADER_MSG_ID: msg_id, HEADER_CHANNEL: message.channel, HEADER_SEQ: str(message.seq)}


def _token(value: str) -> str:
    return _NOT_IN_TOKEN.sub("_", value) or "_"


class NatsBus:
    """A :class:`~purpleflea.bus.base.Bus` over JetStream; see the module docstring."""

    def __init__(
        self,
        client: Client,
        *,
        stream: str,
        prefix: str,
        store: Store | None,
        publish_timeout_s: float,
    ) -> None:
        self._client = client
        self._js: JetStreamContext = client.jetstream()
        self.stream = stream
        self.prefix = prefix
        self.store = store
        self.publish_timeout_s = publish_timeout_s
        self.counters: Counter[str] = Counter()
        self._local = LocalBus()
        self._consumer: NatsSubscription | None = None
        self._last_seq = 0

    @classmethod
    async def connect(
        cls,
        url: str,
        *,
        stream: str = "PURPLEFLEA",
        prefix: str = "pf",
        store: Store | None = None,
        max_age_s: float = 86_400.0,
        duplicate_window_s: float = 120.0,
        publish_timeout_s: float = 5.0,
    ) -> NatsBus:
        """Connect to NATS at ``url`` and create the stream if it does not exist.

        ``store`` (API nodes): where to backfill seqs the stream lacks. ``max_age_s``: how long
        the stream retains messages (history lives in the store; the stream is the live tail).
        """
        counters: Counter[str] = Counter()
        outages = OutageLog(f"NATS bus {stream}", counters, time.monotonic)
        try:
            client = await nats.connect(
                url,
                name="purpleflea",
                connect_timeout=5,
                max_reconnect_attempts=-1,
                **outages.options(),
            )
        except (OSError, nats.errors.Error) as exc:
            raise ConnectionError(f"NATS bus {redacted(url)!r}: cannot connect: {exc!r}") from exc
        outages.connected(client)
        bus = cls(
            client, stream=stream, prefix=prefix, store=store, publish_timeout_s=publish_timeout_s
        )
        bus.counters = counters
        try:
            await bus._ensure_stream(max_age_s=max_age_s, duplicate_window_s=duplicate_window_s)
        except BaseException:
            await client.close()
            raise
        return bus

    @property
    def subjects(self) -> list[str]:
        return [f"{self.prefix}.liq.>", f"{self.prefix}.cascade.>"]

    async def _ensure_stream(self, *, max_age_s: float, duplicate_window_s: float) -> None:
        try:
            info = await self._js.stream_info(self.stream)
        except nats.js.errors.NotFoundError:
            config = StreamConfig(
                name=self.stream,
                subjects=self.subjects,
                retention=RetentionPolicy.LIMITS,
                discard=DiscardPolicy.OLD,
                storage=StorageType.FILE,
                max_age=max_age_s,
                duplicate_window=duplicate_window_s,
            )
            await self._js.add_stream(config)
            return
        missing = set(self.subjects) - set(info.config.subjects or ())
        if missing:
            raise ValueError(
                f"NATS stream {self.stream!r} exists but does not capture {sorted(missing)} "
                f"(it has {info.config.subjects}); use another stream name or prefix"
            )

    # -- ingest side --------------------------------------------------------------------------

    def route(self, message: Message) -> tuple[str, str]:
        """The subject ``message`` is published on (per exchange and market) and its
        ``Nats-Msg-Id`` (the dedupe key)."""
        payload = message.payload
        if isinstance(payload, Liquidation):
            subject = f"{self.prefix}.liq.{_token(payload.exchange)}.{_token(payload.market)}"
            return subject, payload.id
        if isinstance(payload, CascadeAlert):
            # One cascade's alerts share its id: each step is its own message.
            return f"{self.prefix}.cascade.{_token(payload.market)}", f"{payload.id}@{message.seq}"
        raise TypeError(
            f"NATS bus publishes Liquidation or CascadeAlert payloads, got "
            f"{type(payload).__name__} on channel {message.channel!r} (seq {message.seq})"
        )

    async def publish(self, message: Message) -> None:
        """Publish and wait for JetStream's acknowledgement (retried; dedupe makes it safe)."""
        subject, msg_id = self.route(message)
        if not self._client.is_connected:
            # Waiting out three acknowledgement timeouts (15 s) per batch held every new event
            # back from the store for the whole outage: fail at once instead. The event is
            # stored; API nodes backfill it when the next message shows the jump.
            self.counters["publish_failures"] += 1
            raise ConnectionError(
                f"NATS bus {self.stream}: not connected, seq {message.seq} not published"
            )
        for attempt in range(1, _PUBLISH_ATTEMPTS + 1):
            try:
                ack = await self._js.publish(
                    subject,
                    message.data,
                    timeout=self.publish_timeout_s,
                    headers=_headers(message, msg_id),
                )
            except (nats.errors.TimeoutError, nats.js.errors.NoStreamResponseError) as exc:
                if attempt == _PUBLISH_ATTEMPTS:
                    self.counters["publish_failures"] += 1
                    raise ConnectionError(
                        f"NATS bus: seq {message.seq} ({msg_id}) not acknowledged after "
                        f"{attempt} attempts: {exc!r}"
                    ) from exc
                await asyncio.sleep(0.05 * attempt)
                continue
            self.counters["duplicates_dropped" if ack.duplicate else "published"] += 1
            return

    async def publish_many(self, messages: Sequence[Message]) -> None:
        """Publish ``messages`` in order without waiting for each acknowledgement in turn,
        then wait for them all (a backlog read back from the store: one round trip per
        message made it ~1,300/s on a loaded VM). Raises ``ConnectionError`` unless every one
        was acknowledged; publishing them again is safe (JetStream drops the ids it has)."""
        if not messages:
            return
        if not self._client.is_connected:
            self.counters["publish_failures"] += 1
            raise ConnectionError(
                f"NATS bus {self.stream}: not connected, seqs {messages[0].seq}-"
                f"{messages[-1].seq} not published"
            )
        futures: list[asyncio.Future[PubAck]] = []
        try:
            for message in messages:
                subject, msg_id = self.route(message)
                futures.append(
                    await self._js.publish_async(
                        subject, message.data, headers=_headers(message, msg_id)
                    )
                )
            acks = await asyncio.wait_for(asyncio.gather(*futures), self.publish_timeout_s)
        except (nats.errors.Error, OSError, TimeoutError) as exc:
            for future in futures:
                future.cancel()
            self.counters["publish_failures"] += 1
            raise ConnectionError(
                f"NATS bus {self.stream}: seqs {messages[0].seq}-{messages[-1].seq} not all "
                f"acknowledged: {exc!r}"
            ) from exc
        for ack in acks:
            self.counters["duplicates_dropped" if ack.duplicate else "published"] += 1

    # -- API side -----------------------------------------------------------------------------

    async def start(self, *, after_seq: int | None = None) -> None:
        """Start this node's live tail: every message after our seq ``after_seq`` (None: from
        the stream's newest message on) is fanned out to local subscribers in seq order."""
        if self._consumer is not None:
            raise RuntimeError(f"NATS bus on stream {self.stream!r} is already started")
        state = (await self._js.stream_info(self.stream)).state
        if after_seq is None:
            start = state.last_seq + 1
            newest = await self._seq_at(state.last_seq) if state.messages else None
            if newest is None and self.store is not None:
                newest = await self.store.last_seq()
            self._last_seq = newest or 0
        else:
            start = await self._first_after(after_seq, state.first_seq, state.last_seq)
            self._last_seq = after_seq
        self._consumer = await self._js.subscribe(
            f"{self.prefix}.>",
            stream=self.stream,
            cb=self._on_message,
            ordered_consumer=True,
            config=ConsumerConfig(
                deliver_policy=DeliverPolicy.BY_START_SEQUENCE, opt_start_seq=max(start, 1)
            ),
        )

    @property
    def last_seq(self) -> int:
        """The highest seq fanned out on this node (a new client's live position)."""
        return self._last_seq

    async def newest_seq(self) -> int | None:
        """Our seq of the stream's newest message: the last one JetStream acknowledged, by
        this process or an earlier one (None: the stream holds none)."""
        state = (await self._js.stream_info(self.stream)).state
        return await self._seq_at(state.last_seq) if state.messages else None

    async def _seq_at(self, stream_seq: int) -> int | None:
        """Our seq of the message at ``stream_seq`` (None if the stream no longer has it)."""
        try:
            raw = await self._js.get_msg(self.stream, seq=stream_seq)
        except nats.js.errors.NotFoundError:
            return None
        value = (raw.headers or {}).get(HEADER_SEQ)
        return int(value) if value is not None else None

    async def _first_after(self, after_seq: int, first: int, last: int) -> int:
        """The first stream position whose seq is above ``after_seq`` (seqs ascend in the
        stream because the one sequencer publishes in order); ``last + 1`` if none."""
        low, high = max(first, 1), last + 1
        while low < high:
            middle = (low + high) // 2
            seq = await self._seq_at(middle)
            if seq is not None and seq > after_seq:
                high = middle
            else:  # at or before the cursor, or already dropped by retention (older)
                low = middle + 1
        return low

    async def _on_message(self, msg: Msg) -> None:
        try:
            message = decode_message(msg.data, msg.headers)
        except ValueError as exc:
            self.counters["bad_messages"] += 1
            log.warning("NATS bus %s: skipped a message on %s: %s", self.stream, msg.subject, exc)
            return
        if message.seq <= self._last_seq:
            self.counters["duplicates_skipped"] += 1
            return
        if message.seq > self._last_seq + 1 and self.store is not None:
            await self._backfill(before=message.seq)
        self._fan_out(message)

    def _fan_out(self, message: Message) -> None:
        self._last_seq = message.seq
        self.counters["delivered"] += 1
        self._local.publish_now(message)

    async def _backfill(self, *, before: int) -> None:
        """Fan out the stored events and alerts with seqs between the last one and ``before``."""
        assert self.store is not None
        while self._last_seq < before - 1:
            after = self._last_seq
            for wait in (*_BACKFILL_RETRIES_S, None):
                try:
                    found = await stored_messages(self.store, after, before - 1, _BACKFILL_PAGE)
                    break
                except Exception as exc:
                    if wait is None:  # the live tail goes on; clients resume from the store
                        self.counters["backfill_errors"] += 1
                        log.error(
                            "NATS bus %s: backfill after seq %d failed, seqs up to %d are not "
                            "delivered on this node: %s",
                            self.stream,
                            after,
                            before - 1,
                            describe(exc),
                        )
                        return
                    # A store failing over takes seconds: what this node's clients would miss
                    # for good is worth holding the tail (in order) that long.
                    self.counters["backfill_retries"] += 1
                    await asyncio.sleep(wait)
            for message in found:
                self.counters["backfilled"] += 1
                self._fan_out(message)
            if not found:
                return

    def subscribe(self, max_bytes: int = DEFAULT_BUFFER_BYTES) -> LocalSubscription:
        """A local subscriber of this node's live tail (after :meth:`start`)."""
        return self._local.subscribe(max_bytes)

    @property
    def subscribers(self) -> int:
        return self._local.subscribers

    @property
    def connected(self) -> bool:
        """Whether the NATS connection is up (the client reconnects by itself meanwhile)."""
        return bool(self._client.is_connected)

    async def close(self) -> None:
        if self._consumer is not None:
            with contextlib.suppress(Exception):
                await self._consumer.unsubscribe()
            self._consumer = None
        await self._local.close()
        with contextlib.suppress(Exception):
            await self._client.close()
