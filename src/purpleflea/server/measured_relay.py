"""Measured heatmaps across nodes: the ingest node's sampled positions, per market, on JetStream.

Position samplers run on the ingest node only (they spend the machine's IP allowance at the
venues, and two samplers would spend it twice). After a market's sampled state changes (a poll
of an account or of the marks), the ingest node publishes what its measured map is cut from,
:class:`~purpleflea.positions.MeasuredInputs` (the market's sampled positions in the sampler's
order, its mark, open interest and the time they were read), on
``<prefix>.heatmap.measured.<market>``, in the heatmap stream (one message per subject, last
value; :mod:`purpleflea.server.heatmap_relay`). API nodes keep the newest message of every
market and answer ``/v1/heatmap/{market}?source=measured`` with the same cut as the ingest node
(:func:`purpleflea.engine.measured_map.cut`), so any ``low``/``high``/``bucket`` gives the same
body, bit for bit; ``ts`` is when the ingest node read the state it published.

Why the positions and not a full-resolution map: positions carry their own liquidation
prices, and a bucket is any width a client asks for, so no fixed grid could be re-cut into every
answer exactly; coverage, accounts and positions counts come from the same set. Why not a
pre-cut answer: it answers one ``low``/``high``/``bucket`` only. The cost is size: about 64
bytes a position after compression (``bench/measured_relay_size.py``, BENCHMARKS.md), so a
market's message stays under NATS's default 1 MiB payload up to some 16,000 sampled positions;
a larger one is not published (counted as ``measured_too_large`` and logged) rather than split.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import zlib
from collections import Counter

import msgspec
import nats.errors
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription as NatsSubscription

from purpleflea.bus.nats import _token as subject_token
from purpleflea.engine.measured_map import cut
from purpleflea.ingest.position_sampler import RETIRE_AFTER_MS
from purpleflea.positions import MeasuredInputs, MeasuredMap
from purpleflea.server.heatmap_relay import HeatmapRelay, follow_latest
from purpleflea.server.measured import MeasuredMaps

log = logging.getLogger("purpleflea.measured_relay")

_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(MeasuredInputs)


def encode_inputs(inputs: MeasuredInputs) -> bytes:
    """The wire form of ``inputs``: msgpack (floats as float64, so exact), deflated at the
    fastest level (the position field names repeat; level 6 saves only 8 % more)."""
    return zlib.compress(_encoder.encode(inputs), 1)


def decode_inputs(data: bytes) -> MeasuredInputs:
    """:func:`encode_inputs`'s bytes back; ``ValueError`` if malformed."""
    try:
        return _decoder.decode(zlib.decompress(data))
    except (zlib.error, msgspec.DecodeError) as exc:
        raise ValueError(f"measured heatmap message is not a measured state: {exc}") from None


class RelayedMeasuredMaps(MeasuredMaps):
    """An API node's measured maps: the states the ingest node published, cut per request
    like the ingest node's own (the ``/v1/metrics`` lines come from the same methods)."""

    def __init__(self) -> None:
        super().__init__(())
        self._inputs: dict[str, MeasuredInputs] = {}
        self._swept_ts = 0  # the newest state's ts when old ones were last looked for

    def install(self, inputs: MeasuredInputs) -> None:
        self._inputs[inputs.market] = inputs
        if inputs.ts - self._swept_ts >= RETIRE_AFTER_MS // 24:  # hourly, by state time
            self._swept_ts = inputs.ts
            self._retire(inputs.ts - RETIRE_AFTER_MS)

    def _retire(self, before_ts: int) -> None:
        """Forget the markets whose newest state is older than ``before_ts``: the ingest
        node's sampler drops a market no asset context listed for RETIRE_AFTER_MS (a
        delisted coin) and sends nothing more of it, and this node listed its last state
        (in ``GET /v1/markets``' measured_heatmaps) for good. A live market's state is sent
        again whenever its mark moves."""
        for market, held in list(self._inputs.items()):
            if held.ts < before_ts:
                del self._inputs[market]

    def markets(self) -> tuple[str, ...]:
        return tuple(sorted(self._inputs))

    def heatmap(
        self, market: str, *, low: float | None, high: float | None, bucket: float | None
    ) -> MeasuredMap:
        inputs = self._inputs.get(market)
        if inputs is None:
            raise LookupError(
                f"no measured heatmap for {market!r} yet: the ingest node has published none "
                "(is position sampling on there?)"
            )
        return cut(inputs, low=low, high=high, bucket=bucket)


class MeasuredRelay:
    """The measured maps on a heatmap relay's connection and stream: publish or follow."""

    def __init__(self, relay: HeatmapRelay) -> None:
        self.relay = relay
        self.counters: Counter[str] = Counter()
        self._consumer: NatsSubscription | None = None

    @property
    def subject(self) -> str:
        return f"{self.relay.prefix}.heatmap.measured.*"

    def subject_of(self, market: str) -> str:
        return f"{self.relay.prefix}.heatmap.measured.{subject_token(market)}"

    # -- ingest side --------------------------------------------------------------------------

    async def publish(self, inputs: MeasuredInputs) -> bool:
        """Publish one market's state; False (and counted) when it exceeds the server's
        maximum payload."""
        # Deflating 10,000 positions takes tens of ms; zlib does it off the GIL.
        data = await asyncio.to_thread(encode_inputs, inputs)
        client = self.relay.client
        if len(data) > client.max_payload:
            self.counters["measured_too_large"] += 1
            log.warning(
                "measured heatmap of %s not published: %d bytes (%d positions) exceed the NATS "
                "server's max_payload of %d",
                inputs.market,
                len(data),
                len(inputs.positions),
                client.max_payload,
            )
            return False
        await self.relay.js.publish(self.subject_of(inputs.market), data, timeout=5.0)
        self.counters["measured_published"] += 1
        return True

    async def publish_changes(self, maps: MeasuredMaps, *, interval: float) -> None:
        """Every ``interval`` seconds, publish each market whose sampled state (positions,
        mark, open interest) differs from the last one published (until cancelled). A failed
        publish is retried next round; while NATS is away none is tried (each would wait out
        its 5 s timeout and log a line; the outage is logged once)."""
        sent: dict[str, MeasuredInputs] = {}
        while True:
            await asyncio.sleep(interval)
            if not self.relay.client.is_connected:
                continue
            listed: set[str] = set()
            for sampler in maps.samplers:
                for market in sampler.markets():
                    listed.add(market)
                    await self._publish_if_changed(sampler.measured_inputs(market), sent)
            # A market the samplers dropped (a delisted coin): its last state, up to ~16,000
            # positions, stayed here for good, and listed again unchanged it was not sent.
            for market in sent.keys() - listed:
                del sent[market]

    async def _publish_if_changed(
        self, inputs: MeasuredInputs, sent: dict[str, MeasuredInputs]
    ) -> None:
        last = sent.get(inputs.market)
        if last is not None and last == msgspec.structs.replace(inputs, ts=last.ts):
            return
        try:
            if await self.publish(inputs):
                sent[inputs.market] = inputs
        except (nats.errors.Error, OSError) as exc:
            self.counters["measured_publish_failures"] += 1
            log.warning("measured heatmap of %s not published: %r", inputs.market, exc)

    # -- API side -----------------------------------------------------------------------------

    async def follow(self, maps: RelayedMeasuredMaps) -> None:
        """Install the newest state of every market into ``maps``, then each new one."""

        async def on_message(msg: Msg) -> None:
            try:
                inputs = decode_inputs(msg.data)
            except ValueError as exc:
                self.counters["measured_bad_messages"] += 1
                log.warning("measured heatmap message on %s skipped: %s", msg.subject, exc)
                return
            maps.install(inputs)
            self.counters["measured_received"] += 1

        self._consumer = await follow_latest(
            self.relay.js, self.subject, self.relay.stream, on_message
        )

    async def close(self) -> None:
        if self._consumer is not None:
            with contextlib.suppress(Exception):
                await self._consumer.unsubscribe()
            self._consumer = None
