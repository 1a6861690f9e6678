"""Builds the ASGI application: storage, bus, tracker, source, routes, and their lifecycle."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.responses import Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

import purpleflea
from purpleflea.bus.local import LocalBus
from purpleflea.server import dashboard, http, openapi
from purpleflea.server.api import Api
from purpleflea.server.auth import Gate
from purpleflea.server.config import ServerConfig
from purpleflea.server.heatmaps import FuelSink, HeatmapFeed
from purpleflea.server.keys import KeyStore
from purpleflea.server.pipeline import Scorer, Tracker
from purpleflea.server.ratelimit import RateLimiter
from purpleflea.server.sources import run_replay, run_sim
from purpleflea.server.streaming import Streams
from purpleflea.store.lock import exclusive
from purpleflea.store.sqlite import SQLiteStore

log = logging.getLogger("purpleflea.server")
access_log = logging.getLogger("purpleflea.access")

#: Exchange ids a filter may name (the SPEC's list).
EXCHANGES = (
    "binance_usdm",
    "binance_coinm",
    "bybit",
    "okx",
    "bitmex",
    "deribit",
    "dydx_v4",
    "kraken_futures",
    "bitget",
    "gate",
    "htx",
    "hyperliquid",
    "sim",
)

_KEY_IN_QUERY = re.compile(r"(api_key=)[^&]*")


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


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
            query = _KEY_IN_QUERY.sub(r"\1<redacted>", scope.get("query_string", b"").decode())
            path = scope["path"] + (f"?{query}" if query else "")
            access_log.debug(
                "%s %s %s %.1f ms",
                scope.get("method", "WS"),
                path,
                status[0] if status else "-",
                (time.perf_counter() - started) * 1000,
            )


@dataclass
class Server:
    """The running parts of one server, reachable from tests and the CLI."""

    config: ServerConfig
    store: SQLiteStore
    keys: KeyStore
    bus: LocalBus
    tracker: Tracker
    gate: Gate
    streams: Streams
    heatmaps: HeatmapFeed
    started_at: float = field(default_factory=time.time)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    ingest_stats: Callable[[], list[dict[str, Any]]] = list

    def health(self) -> dict[str, Any]:
        stats = self.ingest_stats()
        return {
            "status": "ok",
            "version": purpleflea.__version__,
            "source": self.config.source,
            "uptime_s": round(time.time() - self.started_at, 1),
            "last_seq": self.tracker.last_seq,
            "stream_clients": len(self.gate.streams),
            "streams_closed": dict(self.streams.closed),
            "pipeline": dict(self.tracker.counters),
            "ingest": stats,
        }


def default_scorer() -> Scorer | None:
    """The cascade engine, when the engine package is installed with the server."""
    try:
        from purpleflea.engine.cascade import CascadeEngine  # noqa: PLC0415
    except ImportError:
        return None
    engine: Scorer = CascadeEngine()
    return engine


def build_server(config: ServerConfig, *, scorer: Scorer | None = None) -> Server:
    store = SQLiteStore(config.db_path)
    keys = KeyStore(config.keys_path)
    bus = LocalBus()
    scorer = scorer if scorer is not None else default_scorer()
    heatmaps = HeatmapFeed(fuel=scorer if isinstance(scorer, FuelSink) else None)
    tracker = Tracker(store, bus, scorer=scorer, heatmap=heatmaps)
    gate = Gate(keys, RateLimiter(config.rate_per_s, config.rate_burst))
    streams = Streams(
        tracker=tracker,
        bus=bus,
        gate=gate,
        known_exchanges=EXCHANGES,
        heartbeat_s=config.heartbeat_s,
        client_buffer=config.client_buffer,
    )
    return Server(config, store, keys, bus, tracker, gate, streams, heatmaps)


def _source_task(server: Server) -> Awaitable[None] | None:
    config = server.config
    if config.source == "sim":
        return run_sim(
            server.tracker, seed=config.sim_seed, markets=config.sim_markets, speed=config.speed
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

    ingest = LiveIngest(server.tracker.submit, server.tracker.on_snapshot)
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


def create_app(config: ServerConfig, *, server: Server | None = None) -> Starlette:
    """The ASGI app; ``server`` may be pre-built (tests reach into its parts)."""
    built = server if server is not None else build_server(config)
    api = Api(
        tracker=built.tracker,
        store=built.store,
        gate=built.gate,
        known_exchanges=EXCHANGES,
        health=built.health,
        registrations_per_min=config.registrations_per_min,
        heatmaps=built.heatmaps,
    )
    spec = openapi.document(purpleflea.__version__)

    async def openapi_json(_: Any) -> Response:
        return http.json_response(spec)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        with exclusive(config.data_dir, f"purpleflea serve on port {config.port}"):
            async with _running(app):
                yield

    @asynccontextmanager
    async def _running(app: Starlette) -> AsyncIterator[None]:
        await built.tracker.start()
        built.tasks.append(
            asyncio.create_task(
                _guarded(
                    "revocation watcher",
                    built.gate.watch_revocations(config.revocation_poll_s, _now_ms),
                )
            )
        )
        source = _source_task(built)
        if source is not None:
            built.tasks.append(asyncio.create_task(_guarded(f"{config.source} source", source)))
        app.state.server = built
        try:
            yield
        finally:
            for task in built.tasks:
                task.cancel()
            for task in built.tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await built.tracker.stop()
            await built.bus.close()
            await built.store.close()
            built.keys.close()

    routes: list[BaseRoute] = [
        *api.routes(),
        *built.streams.routes(),
        Route("/openapi.json", openapi_json),
        *dashboard.routes(),
    ]
    return Starlette(routes=routes, lifespan=lifespan, middleware=[Middleware(AccessLog)])
