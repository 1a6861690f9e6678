"""Builds the ASGI application: storage, bus, tracker, source, routes, and their lifecycle.

One process does everything by default (role ``all``: SQLite store, in-process bus). For
several machines (docs/scaleout.md) :func:`open_server` assembles a role instead: ``ingest``
(source, tracker, cascade engine and heatmap model; persists to the store and publishes on a
NATS bus; serves only health and metrics) or ``api`` (no source and no engine: a
:class:`~purpleflea.server.follower.Follower` mirrors the tracker from the bus, heatmaps come
from the ingest node, everything else from the shared store).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import parse_qs, unquote_plus, urlsplit, urlunsplit

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.responses import Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

import purpleflea
from purpleflea import local_server
from purpleflea.bus.base import Bus
from purpleflea.bus.local import LocalBus
from purpleflea.bus.nats import NatsBus
from purpleflea.clock import now_ms
from purpleflea.engine.heatmap_feed import FuelSink, HeatmapFeed
from purpleflea.formatting import printable
from purpleflea.ingest.uptime import Ledger
from purpleflea.server import dashboard, http, openapi
from purpleflea.server.api import Api
from purpleflea.server.auth import Gate, StreamRegistry
from purpleflea.server.config import ServerConfig
from purpleflea.server.conncap import ConnectionCap, process_cap
from purpleflea.server.coverage import CoverageRoutes, CoverageService
from purpleflea.server.cross_site import SameOriginWrites
from purpleflea.server.engine_state import EngineState, KeepsEngine
from purpleflea.server.follower import Follower
from purpleflea.server.health import Vitals, health_reasons, readiness_reasons
from purpleflea.server.heap import collector_stats
from purpleflea.server.heatmap_relay import HeatmapRelay, PublishingSink, RelayedHeatmapModel
from purpleflea.server.host_check import AddressedHostOnly, HostNames, loopback_bind, machine_names
from purpleflea.server.keys import KeyStore, open_key_store
from purpleflea.server.oi_recorder import OpenInterestRecorder
from purpleflea.server.pipeline import Pipeline, Scorer
from purpleflea.server.query_params import QueryCheck
from purpleflea.server.ratelimit import RateLimiter
from purpleflea.server.request_bounds import RequestBounds
from purpleflea.server.sequencer import SequencerLock, hold_sequencer_lock
from purpleflea.server.sources import (
    SIM_STATE_FILE,
    SimObserver,
    SimStatus,
    run_replay,
    run_sim,
)
from purpleflea.server.streaming import Streams
from purpleflea.server.webhook_dispatch import Dispatcher
from purpleflea.server.webhook_routes import WebhookRoutes, WebhookService
from purpleflea.server.webhook_sender import Sender
from purpleflea.server.worker_wire import Settings
from purpleflea.server.workers import WorkerPool
from purpleflea.store.base import Store, StoreUnavailable
from purpleflea.store.coverage import open_coverage_store
from purpleflea.store.factory import is_postgres, open_store, redacted, sqlite_path
from purpleflea.store.lock import exclusive
from purpleflea.store.seqmark import SeqMark
from purpleflea.store.sqlite import SQLiteStore
from purpleflea.store.webhooks import open_webhook_store
from purpleflea.venues import registry

if TYPE_CHECKING:
    from purpleflea.server.measured import MeasuredMaps
    from purpleflea.server.measured_relay import MeasuredRelay

log = logging.getLogger("purpleflea.server")
access_log = logging.getLogger("purpleflea.access")

#: Exchange ids a filter may name: every venue's, and the SPEC's simulator pseudo-exchange.
EXCHANGES = (*registry.EXCHANGE_IDS, "sim")

_INGEST_PATHS = ("/v1/health", "/v1/ready", "/v1/metrics")

#: The query parameter a key may come in (``key_from``): its value never reaches a log.
_KEY_PARAM = "api_key"


def logged_target(scope: Scope) -> str:
    """A request's path and query as the access log writes them: as the client sent them
    (percent-encoded), the value of every parameter the server reads as ``api_key``
    redacted, and anything a log line would act on escaped.

    The redaction goes by the decoded name: ``?api%5Fkey=`` is ``api_key`` to the server
    (it authenticates), and matching the raw text ``api_key=`` wrote such a key out whole.
    The path is the raw one: the decoded path of ``/x%0D%0A...`` carried a line break that
    began a forged log line."""
    path = scope.get("raw_path") or scope["path"].encode()
    query = scope.get("query_string", b"").decode("latin-1")
    if query:
        parts = []
        for part in query.split("&"):
            name = part.partition("=")[0]
            parts.append(f"{name}=<redacted>" if unquote_plus(name) == _KEY_PARAM else part)
        path += b"?" + "&".join(parts).encode("latin-1")
    return printable(path.decode("latin-1"))


class AccessLog:
    """Logs each request (method, path, status, ms) with any ``api_key`` value redacted."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status: list[int] = []

        async def capture(message: Message) -> None:
            if message["type"] == "http.response.start":
                status.append(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, capture)
        finally:
            # Only when it is written (``purpleflea -v serve``): the target's redaction was
            # worked out for every request, log or not, 60 ms of CPU for a 63 KB query.
            if access_log.isEnabledFor(logging.DEBUG):
                access_log.debug(
                    "%s %s %s %.1f ms",
                    scope.get("method", "WS"),
                    logged_target(scope),
                    status[0] if status else "-",
                    (time.perf_counter() - started) * 1000,
                )


class StartupStop(Protocol):
    """What cancels the app's startup when a stop comes during it."""

    def cancel_while_waiting(self, task: asyncio.Task[None]) -> None: ...

    def done_waiting(self) -> None: ...


@dataclass
class Server:
    """The running parts of one server, reachable from tests and the CLI."""

    config: ServerConfig
    store: Store
    keys: KeyStore
    bus: Bus
    tracker: Pipeline
    gate: Gate
    streams: Streams
    heatmaps: HeatmapFeed
    started_at: float = field(default_factory=time.time)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    ingest_stats: Callable[[], list[dict[str, Any]]] = list
    #: Scale-out parts: awaited once the tracker has started, run as background tasks, and
    #: closed (in order) after everything else stopped.
    starters: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    background: list[tuple[str, Callable[[], Awaitable[None]]]] = field(default_factory=list)
    closers: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    #: Called with the simulator after each of its steps (the simulated venues' servers).
    sim_observers: list[SimObserver] = field(default_factory=list)
    #: Simulated venues' ``held_share``: the simulator's own events leave those parts to them.
    sim_held: list[Callable[[str], float]] = field(default_factory=list)
    bus_counters: Callable[[], dict[str, int]] | None = None
    #: Scale-out measured maps: an API node's, relayed from the ingest node; an ingest node's
    #: publisher of its own (given them once the samplers exist).
    relayed_measured: MeasuredMaps | None = None
    measured_publisher: Callable[[MeasuredMaps], Callable[[], Awaitable[None]]] | None = None
    source_task: asyncio.Task[None] | None = None
    #: What the simulator source is doing (None for any other source): /v1/health says it.
    sim_status: SimStatus | None = None
    #: Set when the shutdown begins: readiness answers 503 from then on.
    stopping: bool = False
    #: Told of the app's startup while it runs, to cancel it when a stop comes
    #: (``purpleflea serve``'s :class:`~purpleflea.stopping.ServeStop`); None: the startup
    #: runs to its end.
    startup_stop: StartupStop | None = None
    started_monotonic: float = field(default_factory=time.monotonic)
    #: Connections per client address (uvicorn's protocols count them; /v1/metrics reports).
    connections: ConnectionCap = field(default_factory=lambda: ConnectionCap(0))

    def vitals(self) -> Vitals:
        """What health and readiness decide from (:mod:`purpleflea.server.health`)."""
        tracker = self.tracker
        last = tracker.last_received if tracker.last_received is not None else 0.0
        task = self.source_task
        return Vitals(
            source=self.config.source,
            started=tracker.started,
            stopping=self.stopping,
            source_running=None if task is None else not task.done(),
            quiet_s=time.monotonic() - max(last, self.started_monotonic),
            connections=list(self.ingest_stats()),
            store_failures=tracker.writes.reasons(),
            bus_up=self.bus.connected,
            silence_s=self.config.feed_silence_s,
            key_store_failures=self.gate.key_store_failures(),
            unpublished_seqs=tracker.unpublished_seqs,
        )

    def ready(self) -> tuple[bool, dict[str, Any]]:
        """Whether this process serves now, and the body saying why not."""
        reasons = readiness_reasons(self.vitals())
        return not reasons, {"ready": not reasons, "reasons": reasons}

    webhooks: WebhookService | None = None
    coverage: CoverageService | None = None

    def health(self) -> dict[str, Any]:
        stats = self.ingest_stats()
        extra: dict[str, Any] = {}
        if self.bus_counters is not None:
            extra["bus"] = self.bus_counters()
        if self.streams.workers is not None:
            extra["stream_workers"] = self.streams.workers.health()
        reasons = health_reasons(self.vitals())
        body: dict[str, Any] = {
            "status": "degraded" if reasons else "ok",
            "reasons": reasons,
            "version": purpleflea.__version__,
            "role": self.config.role,
            "source": self.config.source,
            "uptime_s": round(time.time() - self.started_at, 1),
            "last_seq": self.tracker.last_seq,
            "stream_clients": len(self.gate.streams),
            "streams_closed": dict(self.streams.closed),
            "pipeline": dict(self.tracker.counters),
            "store": self.tracker.writes.snapshot(),
            **({"seq_mark": mark.health()} if (mark := self.tracker.seq_mark) else {}),
            "ingest_buffer": {
                "buffered": self.tracker.buffered,
                "limit": self.tracker.buffer_limit,
            },
            "ingest": stats,
            **extra,
        }
        if self.sim_status is not None:
            events = self.tracker.last_seq > 0
            body["source_status"] = self.sim_status.report(now_ms(), events)
        return body


def default_scorer() -> Scorer | None:
    """The cascade engine, when the engine package is installed with the server; its alerts'
    prices are read from the exchanges whose ``price`` is a fill (``registry.fill_priced``)."""
    try:
        from purpleflea.engine import CascadeEngine  # noqa: PLC0415
    except ImportError:
        return None
    engine: Scorer = CascadeEngine(fill_priced=registry.fill_priced())
    return engine


def _single_machine(config: ServerConfig) -> bool:
    return config.role == "all" and config.store_url is None and config.bus_url is None


def build_server(config: ServerConfig, *, scorer: Scorer | None = None) -> Server:
    """The single-machine server: SQLite in the data folder, in-process bus (role ``all``)."""
    if not _single_machine(config):
        raise ValueError(
            f"role {config.role!r} with store {redacted(config.store_url or '')!r} and bus "
            f"{redacted(config.bus_url or '')!r}: "
            "connecting to them is asynchronous, use `await open_server(config)`"
        )
    store = SQLiteStore(config.db_path)
    bus = LocalBus()
    scorer = scorer if scorer is not None else default_scorer()
    heatmaps, recorder = _engine_heatmaps(store, scorer)
    tracker = Pipeline(
        store,
        bus,
        scorer=scorer,
        heatmap=heatmaps,
        fill_priced=registry.fill_priced(),
        seq_mark=seq_mark(store, config.seq_floor),
        engine_state=engine_state(store),
    )
    return _record_open_interest(_assemble(config, store, bus, tracker, heatmaps), recorder)


def seq_mark(store: Store, floor: int | None = None) -> SeqMark | None:
    """The seq mark beside a writable SQLite store file (store/seqmark.py), with the
    operator's seq ``floor`` if given. A PostgreSQL store needs none: it commits
    synchronously, and its nodes share seqs through it."""
    if not isinstance(store, SQLiteStore) or store.read_only:
        return None
    mark = SeqMark.beside(store.path, floor=floor)
    if mark is not None:
        # A damaged mark, or one written beside another store file (a restored backup),
        # fails here, in one line before the port is bound, not at startup.
        mark.verified()
    return mark


def engine_state(store: Store) -> KeepsEngine | None:
    """Where the cascade engine's state is kept: beside a writable SQLite store file, however
    the file was named (the data folder's, or ``--store FILE``); in a PostgreSQL store's
    own database (server/engine_state_postgres.py: a restart and a standby's takeover
    continue the engine). None otherwise (the engine is warmed from the store)."""
    if isinstance(store, SQLiteStore):
        return None if store.read_only else EngineState.beside(store.path)
    from purpleflea.store.postgres import PostgresStore  # noqa: PLC0415 - PostgreSQL only

    if not isinstance(store, PostgresStore):
        return None
    from purpleflea.server.engine_state_postgres import PostgresEngineState  # noqa: PLC0415

    return PostgresEngineState(store)


def _engine_heatmaps(
    store: Store, scorer: Scorer | None
) -> tuple[HeatmapFeed, OpenInterestRecorder | None]:
    """The heatmap feed of a node running the engine and, when the engine takes open
    interest, the recorder that stores what it was told (backtests replay it)."""
    fuel = scorer if isinstance(scorer, FuelSink) else None
    if fuel is None:
        return HeatmapFeed(), None
    recorder = OpenInterestRecorder(store)
    feed = HeatmapFeed(fuel=fuel, on_open_interest=recorder.note, on_retired=recorder.retire)
    return feed, recorder


def _record_open_interest(server: Server, recorder: OpenInterestRecorder | None) -> Server:
    if recorder is not None:
        recorder.counters = server.tracker.counters  # its failures show in /health
        recorder.writes = server.tracker.writes  # one outage state (and log) per store
        server.background.append(("open interest recorder", recorder.run))
        server.closers.append(recorder.close)  # closers run before the store closes
    return server


def _assemble(
    config: ServerConfig, store: Store, bus: Bus, tracker: Pipeline, heatmaps: HeatmapFeed
) -> Server:
    tracker.buffer_limit = config.ingest_buffer
    keys = open_key_store(config.store, config.keys_path)
    open_streams = StreamRegistry(
        max_per_account=config.streams_per_account, opens_per_min=config.stream_opens_per_min
    )
    gate = Gate(keys, RateLimiter(config.rate_per_s, config.rate_burst), open_streams)
    streams = Streams(
        tracker=tracker,
        bus=bus,
        gate=gate,
        known_exchanges=EXCHANGES,
        heartbeat_s=config.heartbeat_s,
        buffer_bytes=config.stream_buffer_bytes,
    )
    connections = ConnectionCap(
        config.connections_per_address,
        total=process_cap() if config.max_connections is None else config.max_connections,
        exempt=config.trusted_proxies,
    )
    server = Server(
        config, store, keys, bus, tracker, gate, streams, heatmaps, connections=connections
    )
    return _with_coverage(_with_webhooks(server))


def _with_coverage(server: Server) -> Server:
    """Coverage in the history store's database; recorded where the source runs (roles
    ``all`` and ``ingest``), on the simulator's clock when it is the source."""
    config = server.config
    service = CoverageService(open_coverage_store(config.store))
    if config.role != "api":
        snapshot = [e.id for e in registry.EXCHANGES.values() if e.coverage == "snapshot"]
        service.ledger = Ledger(snapshot)
        if config.source == "sim":
            tracker = server.tracker
            service.clock = lambda: tracker.clock_ms or now_ms()
        server.background.append(("coverage recorder", service.run))
    server.closers.append(service.close)
    server.coverage = service
    return server


def _with_webhooks(server: Server) -> Server:
    """Webhooks in the history store's database; the dispatcher runs where seqs are assigned
    (roles ``all`` and ``ingest``: one active node), so each item is delivered once."""
    config = server.config
    settings = config.webhooks
    proxied = bool(config.allowed_hosts or config.trusted_proxies)
    sender = Sender(settings, allow_private=settings.private_allowed(config.host, proxied=proxied))
    service = WebhookService(
        open_webhook_store(config.store),
        sender,
        settings,
        EXCHANGES,
        position=lambda: server.tracker.last_seq,
    )
    if config.role != "api":
        service.dispatcher = Dispatcher(
            service.store,
            server.bus,
            sender,
            settings,
            history=server.store,
            position=_handed_out(server),
            known_exchanges=EXCHANGES,
            writes=server.tracker.writes,
        )
        server.background.append(("webhook dispatcher", service.dispatcher.run))
    server.closers.append(service.close)
    server.webhooks = service
    return server


def _handed_out(server: Server) -> Callable[[], int]:
    """The seq up to which the bus has handed items to this node's subscribers: a new
    subscription gets every item above it, and every item at or below it is stored. The
    tracker's published seq on the in-process bus; on NATS, where this node's own items come
    back from JetStream, also what came back (it runs ahead of the publish's ack: an item
    above the published seq but handed out before the webhook dispatcher subscribed again was
    in no subscription and not read back from the store)."""
    tracker, bus = server.tracker, server.bus
    if isinstance(bus, NatsBus):
        return lambda: max(tracker.last_seq, bus.last_seq)
    return lambda: tracker.last_seq


def nats_options(url: str) -> tuple[str, str, str]:
    """``(server URL, stream, subject prefix)`` of a bus URL such as
    ``nats://host:4222?stream=PURPLEFLEA&prefix=pf`` (those two are the defaults)."""
    parts = urlsplit(url)
    if parts.scheme not in ("nats", "tls"):
        raise ValueError(
            f"bus URL {redacted(url)!r}: use nats://host:port (got scheme {parts.scheme!r})"
        )
    options = parse_qs(parts.query)
    unknown = set(options) - {"stream", "prefix"}
    if unknown:
        raise ValueError(
            f"bus URL {redacted(url)!r}: unknown options {sorted(unknown)} (stream, prefix)"
        )
    stream = options.get("stream", ["PURPLEFLEA"])[-1]
    prefix = options.get("prefix", ["pf"])[-1]
    return urlunsplit(parts._replace(query="")), stream, prefix


async def open_server(config: ServerConfig, *, scorer: Scorer | None = None) -> Server:
    """The server for ``config.role``, its store and bus connected (see the module docstring).
    With the default role and URLs this is :func:`build_server`."""
    if _single_machine(config):
        return build_server(config, scorer=scorer)
    store = await open_store(config.store)
    closers: list[Callable[[], Awaitable[None]]] = []
    try:
        lock = None
        if config.role != "api" and is_postgres(config.store):
            lock = await hold_sequencer_lock(config.store)  # a standby waits here
            closers.append(lock.release)
        server = await _open_role(config, store, scorer, closers)
    except BaseException:
        for close in reversed(closers):
            await close()
        await store.close()
        raise
    if lock is not None:
        _guard_writes(server, store, lock)
    return server


def _guard_writes(server: Server, store: Store, lock: SequencerLock) -> None:
    """This node writes only while it holds the sequencer lock (server/sequencer.py): a
    PostgreSQL restart ends the lock's session, and a standby may take it meanwhile."""
    from purpleflea.store.postgres import PostgresStore  # noqa: PLC0415 - PostgreSQL only

    if isinstance(store, PostgresStore):
        store.write_guard = lock.check
    # Superseded: stop as on SIGTERM (what is unstored is dropped and counted); the
    # process's supervisor starts it again, as a standby.
    lock.on_superseded = lambda: os.kill(os.getpid(), signal.SIGTERM)
    server.background.append(("sequencer lock watch", lock.watch))
    server.closers.append(lock.release)  # after everything else stopped


async def _open_role(
    config: ServerConfig,
    store: Store,
    scorer: Scorer | None,
    closers: list[Callable[[], Awaitable[None]]],
) -> Server:
    if config.bus_url is None:  # role all, shared store, one process: nothing to relay
        scorer = scorer if scorer is not None else default_scorer()
        heatmaps, recorder = _engine_heatmaps(store, scorer)
        tracker = Pipeline(
            store,
            LocalBus(),
            scorer=scorer,
            heatmap=heatmaps,
            fill_priced=registry.fill_priced(),
            seq_mark=seq_mark(store, config.seq_floor),
            engine_state=engine_state(store),
        )
        server = _assemble(config, store, tracker.bus, tracker, heatmaps)
        return _record_open_interest(server, recorder)
    url, stream, prefix = nats_options(config.bus_url)
    bus = await NatsBus.connect(url, stream=stream, prefix=prefix, store=store)
    closers.append(bus.close)
    relay = await HeatmapRelay.connect(url, stream=stream, prefix=prefix)
    closers.append(relay.close)
    if config.role == "api":
        return _api_node(config, store, bus, relay)
    return _ingest_node(config, store, bus, relay, scorer)


def _ingest_node(
    config: ServerConfig, store: Store, bus: NatsBus, relay: HeatmapRelay, scorer: Scorer | None
) -> Server:
    """Roles ``ingest`` and ``all`` on a NATS bus: the one tracker that assigns seqs, the
    cascade engine and the heatmap model; events, alerts and heatmaps go out on the bus."""
    scorer = scorer if scorer is not None else default_scorer()
    heatmaps, recorder = _engine_heatmaps(store, scorer)
    sink = PublishingSink(heatmaps)
    tracker = Pipeline(
        store,
        bus,
        scorer=scorer,
        heatmap=sink,
        fill_priced=registry.fill_priced(),
        seq_mark=seq_mark(store, config.seq_floor),
        engine_state=engine_state(store),
    )
    server = _record_open_interest(_assemble(config, store, bus, tracker, heatmaps), recorder)
    server.background.append(
        (
            "heatmap publisher",
            lambda: relay.publish_changes(sink, interval=config.heatmap_publish_s),
        )
    )
    # This process also serves clients (role all) or delivers webhooks: it reads the bus too.
    server.starters.append(lambda: bus.start(after_seq=tracker.last_seq))
    server.closers.append(relay.close)
    measured = _measured_relay(relay)
    server.bus_counters = lambda: {
        **_bus_counters(bus, relay, measured.counters),
        # What a publish outage left: published from the store once the bus is back.
        "republished": tracker.counters["republished"],
        "republished_alerts": tracker.counters["republished_alerts"],
        "unpublished_seqs": tracker.unpublished_seqs,
    }

    def publisher(maps: MeasuredMaps) -> Callable[[], Awaitable[None]]:
        return lambda: measured.publish_changes(maps, interval=config.heatmap_publish_s)

    server.measured_publisher = publisher
    return server


def _measured_relay(relay: HeatmapRelay) -> MeasuredRelay:
    from purpleflea.server.measured_relay import MeasuredRelay  # noqa: PLC0415 - loads samplers

    return MeasuredRelay(relay)


def _bus_counters(
    bus: NatsBus, relay: HeatmapRelay, measured: Counter[str] | None = None
) -> dict[str, int]:
    heatmaps = {f"heatmap_{k}": v for k, v in relay.counters.items()}
    return {**bus.counters, **heatmaps, **{f"heatmap_{k}": v for k, v in (measured or {}).items()}}


def _api_node(config: ServerConfig, store: Store, bus: NatsBus, relay: HeatmapRelay) -> Server:
    """Role ``api``: clients are served from the bus and the store; no engine runs here."""
    from purpleflea.server.measured_relay import RelayedMeasuredMaps  # noqa: PLC0415

    model = RelayedHeatmapModel()
    server = _assemble(config, store, bus, Follower(store, bus), HeatmapFeed(model))
    measured, maps = _measured_relay(relay), RelayedMeasuredMaps()
    server.starters.append(lambda: relay.follow(model))
    server.starters.append(lambda: measured.follow(maps))
    server.closers.append(measured.close)
    server.closers.append(relay.close)
    server.relayed_measured = maps
    server.bus_counters = lambda: _bus_counters(bus, relay, measured.counters)
    return server


def _source_task(server: Server) -> Awaitable[None] | None:
    config = server.config
    if config.source == "sim":
        server.sim_status = SimStatus(config.sim_markets)
        return run_sim(
            server.tracker,
            seed=config.sim_seed,
            markets=config.sim_markets,
            speed=config.speed,
            state_path=config.data_dir / SIM_STATE_FILE,
            ledger=server.coverage.ledger if server.coverage else None,
            observers=tuple(server.sim_observers),
            held_elsewhere=tuple(server.sim_held),
            status=server.sim_status,
        )
    if config.source == "replay":
        if config.replay_path is None:
            raise ValueError("source 'replay' needs a replay file path")
        return run_replay(server.tracker, config.replay_path, speed=config.speed)
    if config.source == "live":
        return _run_live(server)
    if config.source == "none":
        return None
    raise ValueError(f"unknown source {config.source!r}: use sim, live, replay or none")


async def _run_live(server: Server) -> None:
    from purpleflea.ingest.live import LiveIngest  # noqa: PLC0415 - only the live source needs it

    ingest = LiveIngest(
        server.tracker.submit,
        server.tracker.on_snapshot,
        ledger=server.coverage.ledger if server.coverage else None,
    )
    server.ingest_stats = ingest.stats
    await ingest.start()
    try:
        await asyncio.Event().wait()
    finally:
        await ingest.stop()


async def _guarded(name: str, work: Awaitable[None]) -> None:
    """A background task whose failure is logged, never silently lost."""
    try:
        await work
    except asyncio.CancelledError:
        raise
    except Exception:
        log.exception("%s stopped with an error", name)


def writer_lock(config: ServerConfig) -> contextlib.AbstractContextManager[None]:
    """The data folder's writer lock, when this process writes to a local SQLite file (a
    shared PostgreSQL store has its own rule: one ingest node)."""
    store = config.store
    if config.role == "api" or is_postgres(store):
        return contextlib.nullcontext()
    # --port 0 is bound after the lock is taken: its port is known only from server.json.
    where = (
        f"on port {config.port}"
        if config.port
        else f"on any free port (its address: {Path(config.data_dir) / local_server.FILE_NAME})"
    )
    return exclusive(sqlite_path(store).parent, f"purpleflea serve {where}")


def _measured_maps(config: ServerConfig, built: Server) -> MeasuredMaps | None:
    """Position samplers as background work when configured (not on API-only nodes: theirs
    are relayed from the ingest node, which publishes its own)."""
    if config.role == "api":
        return built.relayed_measured
    if config.positions is None:
        return None
    from purpleflea.server.measured import start_sampling  # noqa: PLC0415 - only when on

    sampling = start_sampling(config.positions, config.store, built.tracker.submit)
    for venue in sampling.simulated:
        built.starters.append(venue.start)
        built.sim_observers.append(venue.observe)
        built.sim_held.append(venue.held_share)
    built.background.extend(sampling.work)
    built.closers.append(sampling.close)
    if built.measured_publisher is not None:
        built.background.append(
            ("measured heatmap publisher", built.measured_publisher(sampling.maps))
        )
    return sampling.maps


def create_app(
    config: ServerConfig, *, server: Server | None = None, lock: bool = True
) -> Starlette:
    """The ASGI app; ``server`` may be pre-built (tests reach into its parts). ``lock=False``:
    the caller already holds the data folder's :func:`writer_lock` (``purpleflea serve``
    takes it before opening anything, so a busy folder fails before the banner)."""
    built = server if server is not None else build_server(config)
    routes: list[BaseRoute]
    measured = _measured_maps(config, built)
    spec = openapi.document(purpleflea.__version__, exchanges=EXCHANGES)
    api = Api(
        tracker=built.tracker,
        store=built.store,
        gate=built.gate,
        known_exchanges=EXCHANGES,
        health=built.health,
        ready=built.ready,
        registrations_per_min=config.registrations_per_min,
        registration_open=config.registration_open,
        keys_per_account=config.keys_per_account,
        heatmaps=built.heatmaps,
        measured=measured,
        query_check=QueryCheck(spec),
    )
    api.metric_sources.append(built.tracker.latency.metrics)
    api.metric_sources.append(collector_stats().metrics)
    api.metric_sources.append(built.tracker.core.dedupe_metrics)
    api.metric_sources.append(built.connections.metrics)
    if built.tracker.seq_mark is not None:
        api.metric_sources.append(built.tracker.seq_mark.metrics)
    if measured is not None:
        api.metric_sources.append(lambda: measured.metrics(built.heatmaps.model))
    webhooks: list[BaseRoute] = []
    if built.webhooks is not None:
        api.metric_sources.append(built.webhooks.metrics)
        if built.webhooks.dispatcher is not None:
            api.metric_sources.append(built.webhooks.dispatcher.metrics)
        webhooks = list(
            WebhookRoutes(
                built.webhooks,
                authed=api.authed,
                allow_private=built.webhooks.sender.allow_private,
            ).routes()
        )

    if built.coverage is not None:
        webhooks.extend(
            CoverageRoutes(built.coverage, authed=api.authed, known_exchanges=EXCHANGES).routes()
        )

    async def openapi_json(_: Any) -> Response:
        return http.json_response(spec)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        with writer_lock(config) if lock else contextlib.nullcontext():
            async with _running(app):
                yield

    @asynccontextmanager
    async def _running(app: Starlette) -> AsyncIterator[None]:
        # A stop during the startup cancels it where it is: uvicorn reads its stop only once
        # the startup is done, and the stop waited for every step (the store warmed, venues
        # and the simulator started: 8-13 s at load 12). What had started is then stopped as
        # at any stop, below.
        starting = asyncio.create_task(_start(app), name="startup")
        stop = built.startup_stop
        if stop is not None:
            stop.cancel_while_waiting(starting)
        try:
            await starting
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if stop is None or (current is not None and current.cancelling()):
                raise
            log.info("startup cancelled by the stop")
        finally:
            if stop is not None:
                stop.done_waiting()
        app.state.server = built
        try:
            yield
        finally:
            built.stopping = True
            for task in built.tasks:
                task.cancel()
            for task in built.tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await built.tracker.stop()
            if built.streams.workers is not None:
                await built.streams.workers.stop()
                built.streams.workers = None
            await built.streams.fanout.stop()
            await built.bus.close()
            for close in built.closers:
                await close()
            await built.store.close()
            built.keys.close()

    async def _start(app: Starlette) -> None:
        await built.tracker.start()
        built.streams.fanout.start()
        if config.stream_workers > 1:
            settings = Settings(
                store=config.store,
                heartbeat_s=config.heartbeat_s,
                buffer_bytes=config.stream_buffer_bytes,
                last_seq=built.tracker.last_seq,
                rate_per_s=config.rate_per_s,
                rate_burst=config.rate_burst,
            )
            built.streams.workers = WorkerPool(
                config.stream_workers, settings, built.tracker.latency
            )
            await built.streams.workers.start(built.streams.fanout)
        for start in built.starters:
            await start()
        for name, work in built.background:
            built.tasks.append(asyncio.create_task(_guarded(name, work())))
        built.tasks.append(
            asyncio.create_task(
                _guarded(
                    "revocation watcher",
                    built.gate.watch_revocations(config.revocation_poll_s, now_ms),
                )
            )
        )
        source = _source_task(built)
        if source is not None:
            built.source_task = asyncio.create_task(_guarded(f"{config.source} source", source))
            built.tasks.append(built.source_task)

    if config.role == "ingest":  # clients are served by the API nodes
        routes = [r for r in api.routes() if getattr(r, "path", "") in _INGEST_PATHS]
    else:
        routes = [
            *api.routes(),
            *webhooks,
            *built.streams.routes(),
            Route("/openapi.json", openapi_json),
            *dashboard.routes(),
        ]
    # The Host names requests may be addressed to (DNS rebinding); this machine's own names
    # are looked up here, before serving, for a server other machines reach.
    names = HostNames(
        config.host,
        config.allowed_hosts,
        machine=() if loopback_bind(config.host) else machine_names(config.host),
    )
    return Starlette(
        routes=routes,
        lifespan=lifespan,
        middleware=[
            Middleware(RequestBounds),
            Middleware(AccessLog),
            Middleware(AddressedHostOnly, names=names, counts=built.connections.client_errors),
            Middleware(SameOriginWrites, names=names),
        ],
        exception_handlers={
            HTTPException: http.http_error,
            StoreUnavailable: http.store_unavailable,
        },
    )
