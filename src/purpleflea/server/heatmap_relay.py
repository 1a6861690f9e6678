"""Heatmaps across nodes: the ingest node's model output, the latest per market, on JetStream.

The heatmap model runs once per market, on the ingest node, where it also feeds the cascade
engine its "fuel ahead". After a market's model changes (an open-interest snapshot), the ingest
node publishes that market's *summed view* (cumulative USD at risk at every 0.1 % price bin,
long and short, with the mark and time) on ``<prefix>.heatmap.<market>``, in a stream of its
own that keeps one message per subject (last-value semantics). API nodes read the newest
message of every subject when they start and each new one after, and answer
``/v1/heatmap/{market}`` with the same code as a single-machine server
(:meth:`~purpleflea.engine.heatmap.HeatmapModel.heatmap`): any ``low``/``high``/``bucket`` a
client asks for is cut from the full-resolution view, so an API node's answer equals what the
ingest node's model would answer, bit for bit.

Why not publish the snapshots and let every API node run the model: that runs it once per API
node instead of once per market, and a new API node would start with no history (the model
needs every snapshot since the market was first seen).

The view is trimmed to the bins that hold anything (outside them the cumulative sums are
constant, and interpolation clamps to the same constants), about 20 KB per market.
Publishing is throttled: each changed market at most once per ``interval``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable

import msgspec
import nats
import nats.errors
import nats.js.errors
import numpy as np
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription as NatsSubscription
from nats.js import JetStreamContext
from nats.js.api import (
    ConsumerConfig,
    DeliverPolicy,
    DiscardPolicy,
    RetentionPolicy,
    StorageType,
    StreamConfig,
)

from purpleflea.bus.nats import OutageLog
from purpleflea.bus.nats import _token as subject_token
from purpleflea.engine.heatmap import HeatmapModel, _View
from purpleflea.engine.heatmap_feed import HeatmapFeed
from purpleflea.model import MarketSnapshot
from purpleflea.store.factory import redacted

log = logging.getLogger("purpleflea.heatmap_relay")


class HeatmapState(msgspec.Struct, frozen=True, kw_only=True):
    """One market's summed view on the wire: ``long_cdf``/``short_cdf`` are little-endian
    float64 arrays, cumulative USD at grid edges ``start``, ``start + 1``, ..."""

    market: str
    start: int
    mark: float
    ts: int
    long_cdf: bytes
    short_cdf: bytes


_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(HeatmapState)


def encode_view(market: str, view: _View) -> bytes:
    """The wire form of ``view``, trimmed to the bins that hold positions."""
    held = np.flatnonzero((np.diff(view.long_cdf) != 0) | (np.diff(view.short_cdf) != 0))
    first, end = (int(held[0]), int(held[-1]) + 2) if len(held) else (0, len(view.long_cdf))
    return _encoder.encode(
        HeatmapState(
            market=market,
            start=view.start + first,
            mark=view.mark,
            ts=view.ts,
            long_cdf=np.ascontiguousarray(view.long_cdf[first:end], "<f8").tobytes(),
            short_cdf=np.ascontiguousarray(view.short_cdf[first:end], "<f8").tobytes(),
        )
    )


def decode_view(data: bytes) -> tuple[str, _View]:
    """``(market, view)`` from :func:`encode_view`'s bytes; ``ValueError`` if malformed."""
    try:
        state = _decoder.decode(data)
    except msgspec.DecodeError as exc:
        raise ValueError(f"heatmap message is not a heatmap state: {exc}") from None
    if len(state.long_cdf) != len(state.short_cdf) or not state.long_cdf:
        raise ValueError(
            f"heatmap message for {state.market!r}: long and short arrays must be non-empty and "
            f"of one length, got {len(state.long_cdf)} and {len(state.short_cdf)} bytes"
        )
    if len(state.long_cdf) % 8:
        raise ValueError(f"heatmap message for {state.market!r}: arrays are not float64")
    view = _View(
        start=state.start,
        long_cdf=np.frombuffer(state.long_cdf, "<f8").astype(np.float64),
        short_cdf=np.frombuffer(state.short_cdf, "<f8").astype(np.float64),
        mark=state.mark,
        ts=state.ts,
    )
    return state.market, view


class RelayedHeatmapModel(HeatmapModel):
    """An API node's heatmaps: views received from the ingest node, queried with the model's
    own :meth:`heatmap` (it reads only views; this model never sees a snapshot)."""

    def install(self, market: str, view: _View) -> None:
        self._views[market] = view

    def markets(self) -> tuple[str, ...]:
        return tuple(sorted(self._views))

    def on_snapshot(
        self, snapshot: MarketSnapshot, *, low: float | None = None, high: float | None = None
    ) -> bool:
        raise RuntimeError(
            f"snapshot of {snapshot.market}: an API node's heatmaps come from the ingest node, "
            "it runs no model of its own"
        )


class PublishingSink:
    """The ingest node's snapshot sink: feeds the local :class:`HeatmapFeed` and remembers
    which markets changed, for :meth:`HeatmapRelay.publish_changes`."""

    def __init__(self, feed: HeatmapFeed) -> None:
        self.feed = feed
        self.changed: set[str] = set()

    def note_price(self, market: str, price: float) -> None:
        self.feed.note_price(market, price)

    def retire_prices(self, market: str) -> bool:
        return self.feed.retire_prices(market)

    def on_snapshot(self, snapshot: MarketSnapshot) -> None:
        self.feed.on_snapshot(snapshot)  # raises ValueError for a bad one: nothing changed
        self.changed.add(snapshot.market)


async def follow_latest(
    js: JetStreamContext, subject: str, stream: str, cb: Callable[[Msg], Awaitable[None]]
) -> NatsSubscription:
    """``cb`` for the newest message of every subject matching ``subject`` in ``stream`` now,
    then for each new one: the last-value reading both relays' followers share."""
    return await js.subscribe(
        subject,
        stream=stream,
        cb=cb,
        ordered_consumer=True,
        config=ConsumerConfig(deliver_policy=DeliverPolicy.LAST_PER_SUBJECT),
    )


class HeatmapRelay:
    """The heatmap stream on one NATS connection: publish (ingest) or follow (API)."""

    def __init__(self, client: Client, *, stream: str, prefix: str) -> None:
        self._client = client
        self._js = client.jetstream()
        self.stream = stream
        self.prefix = prefix
        self.counters: Counter[str] = Counter()
        self._consumer: NatsSubscription | None = None

    @classmethod
    async def connect(
        cls, url: str, *, stream: str = "PURPLEFLEA", prefix: str = "pf", max_age_s: float = 86_400
    ) -> HeatmapRelay:
        """Connect to NATS at ``url``; the heatmap stream is ``<stream>_HEATMAPS``, created
        when missing."""
        counters: Counter[str] = Counter()
        outages = OutageLog(f"NATS heatmaps {stream}_HEATMAPS", counters, time.monotonic)
        try:
            client = await nats.connect(
                url,
                name="purpleflea-heatmaps",
                connect_timeout=5,
                max_reconnect_attempts=-1,
                **outages.options(),
            )
        except (OSError, nats.errors.Error) as exc:
            raise ConnectionError(
                f"NATS heatmaps {redacted(url)!r}: cannot connect: {exc!r}"
            ) from exc
        outages.connected(client)
        relay = cls(client, stream=f"{stream}_HEATMAPS", prefix=prefix)
        relay.counters = counters
        try:
            await relay._ensure_stream(max_age_s)
        except BaseException:
            await client.close()
            raise
        return relay

    @property
    def subject(self) -> str:
        """What the stream captures: the estimated views and the measured states
        (:mod:`purpleflea.server.measured_relay`, one token deeper)."""
        return f"{self.prefix}.heatmap.>"

    @property
    def client(self) -> Client:
        return self._client

    @property
    def js(self) -> JetStreamContext:
        return self._js

    async def _ensure_stream(self, max_age_s: float) -> None:
        try:
            info = await self._js.stream_info(self.stream)
        except nats.js.errors.NotFoundError:
            await self._js.add_stream(
                StreamConfig(
                    name=self.stream,
                    subjects=[self.subject],
                    retention=RetentionPolicy.LIMITS,
                    discard=DiscardPolicy.OLD,
                    storage=StorageType.FILE,
                    max_msgs_per_subject=1,
                    max_age=max_age_s,
                )
            )
            return
        if self.subject not in (info.config.subjects or ()):
            raise ValueError(
                f"NATS stream {self.stream!r} exists but does not capture {self.subject!r} "
                f"(it has {info.config.subjects}); use another stream name or prefix"
            )

    # -- ingest side --------------------------------------------------------------------------

    async def publish(self, market: str, view: _View) -> None:
        subject = f"{self.prefix}.heatmap.{subject_token(market)}"
        await self._js.publish(subject, encode_view(market, view), timeout=5.0)
        self.counters["published"] += 1

    async def publish_changes(self, sink: PublishingSink, *, interval: float) -> None:
        """Every ``interval`` seconds, publish the markets whose model changed (until
        cancelled). A failed publish keeps the market for the next round. While NATS is away
        nothing is tried: each try would wait out its 5 s timeout and log a line (the outage
        itself is logged once, :class:`~purpleflea.bus.nats.OutageLog`).

        The first round publishes every market the model holds already: the maps the tracker
        rebuilt at start from the stored open interest, which no snapshot changed yet (an API
        node following a stream that lost them, new or aged out, serves them too)."""
        model = sink.feed.model
        sink.changed.update(model.markets())
        while True:
            await asyncio.sleep(interval)
            if not self._client.is_connected:
                continue  # the changed markets wait for the connection
            markets, sink.changed = sink.changed, set()
            for market in sorted(markets):
                try:
                    await self.publish(market, model._view(market))
                except (nats.errors.Error, OSError) as exc:
                    self.counters["publish_failures"] += 1
                    sink.changed.add(market)
                    log.warning("heatmap of %s not published: %r", market, exc)

    # -- API side -----------------------------------------------------------------------------

    async def follow(self, model: RelayedHeatmapModel) -> None:
        """Install the newest view of every market into ``model``, then each new one."""

        async def on_message(msg: Msg) -> None:
            try:
                market, view = decode_view(msg.data)
            except ValueError as exc:
                self.counters["bad_messages"] += 1
                log.warning("heatmap message on %s skipped: %s", msg.subject, exc)
                return
            model.install(market, view)
            self.counters["received"] += 1

        # The views only: measured states are one token deeper.
        self._consumer = await follow_latest(
            self._js, f"{self.prefix}.heatmap.*", self.stream, on_message
        )

    async def close(self) -> None:
        if self._consumer is not None:
            with contextlib.suppress(Exception):
                await self._consumer.unsubscribe()
            self._consumer = None
        with contextlib.suppress(Exception):
            await self._client.close()
