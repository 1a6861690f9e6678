"""``purpleflea serve``: run the tracker (simulated markets by default, fully offline).

``--role ingest|api`` with ``--store postgresql://...`` and ``--bus nats://...`` splits it over
several processes or machines (docs/scaleout.md).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import errno
import math
import shlex
import socket
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from purpleflea.commands.serve_positions import add_position_options, position_settings
from purpleflea.commands.sim import market_count
from purpleflea.local_server import client_url, record_address, remove_address
from purpleflea.server.config import ROLES, ServerConfig
from purpleflea.server.conncap import DEFAULT_PER_ADDRESS, RESERVED_MIN
from purpleflea.stopping import ServeStop
from purpleflea.store.factory import is_postgres, redacted

if TYPE_CHECKING:
    import uvicorn


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    defaults = ServerConfig()
    hook_defaults = defaults.webhooks
    parser = sub.add_parser(
        "serve",
        help="run the tracker server",
        description="Run the tracker: ingest a source, store every event, serve the API.",
    )
    parser.add_argument(
        "--source",
        choices=("sim", "live", "replay", "none"),
        default=None,
        help="where events come from (default: sim, the offline market simulator; "
        "none for --role api)",
    )
    parser.add_argument("--replay", type=Path, help="JSON-lines event file for --source replay")
    parser.add_argument(
        "--data-dir", type=Path, default=Path("data"), help="storage folder (default ./data)"
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument(
        "--speed", type=float, default=1.0, help="sim/replay speed vs real time (default 1)"
    )
    parser.add_argument("--seed", type=int, default=0, help="simulator seed")
    parser.add_argument(
        "--markets", type=market_count, default=275, help="simulated markets (1-300)"
    )
    parser.add_argument(
        "--heartbeat",
        type=float,
        default=10.0,
        help="a stream's heartbeat after this long without a frame, s",
    )
    parser.add_argument(
        "--role",
        choices=ROLES,
        default="all",
        help="all: everything in this process (default); ingest: source, engine, store "
        "writes, bus publishing; api: serve clients from the bus and the store",
    )
    parser.add_argument(
        "--store",
        metavar="URL",
        help="history store: postgresql://user@host:5432/db for several machines "
        "(default: the SQLite file in --data-dir)",
    )
    parser.add_argument(
        "--bus",
        metavar="URL",
        help="event bus between nodes: nats://host:4222[?stream=NAME&prefix=PFX] "
        "(default: in-process; required by --role ingest and api)",
    )
    parser.add_argument(
        "--ingest-buffer",
        type=int,
        default=200_000,
        metavar="EVENTS",
        help="events that may wait for a failing or slow store (default 200000); beyond it "
        "new events are dropped and counted (dropped_buffer_full in /v1/health)",
    )
    parser.add_argument(
        "--feed-silence",
        type=float,
        default=60.0,
        metavar="S",
        help="seconds without an event (sim, replay) or a frame (live) before /v1/health "
        "says degraded (default 60)",
    )
    parser.add_argument(
        "--seq-floor",
        type=int,
        default=None,
        metavar="N",
        help="number after at least seq N and the seq mark (SQLite store): needed once after "
        "the store is restored from a backup, copied, moved or made anew; N at or above "
        "every seq clients may have seen when the mark was restored with the store, else 0 "
        "(the mark keeps its own); see docs/live.md",
    )
    _limit_options(parser)
    add_position_options(parser)
    webhooks = parser.add_argument_group("webhooks (docs/webhooks.md)")
    webhooks.add_argument(
        "--webhook-private-targets",
        choices=("auto", "allow", "refuse"),
        default="auto",
        help="webhooks to private, loopback and link-local addresses (SSRF): auto allows them "
        "only when --host is loopback (default)",
    )
    webhooks.add_argument(
        "--webhook-attempts", type=int, default=8, help="attempts per delivery (default 8)"
    )
    webhooks.add_argument(
        "--webhooks-per-host",
        type=int,
        default=hook_defaults.max_per_host,
        metavar="N",
        help="webhooks aimed at one host, all accounts together; more are refused with 409 "
        f"too_many_webhooks_for_host (0: no cap; default {hook_defaults.max_per_host})",
    )
    webhooks.add_argument(
        "--webhook-destination-rate",
        type=float,
        default=hook_defaults.destination_rate,
        metavar="N",
        help="deliveries a second to one destination address, all webhooks together, after "
        "a burst of 2 s worth; more wait their turn (0: no budget; default "
        f"{hook_defaults.destination_rate:g})",
    )
    webhooks.add_argument(
        "--webhook-destination-bytes",
        type=float,
        default=hook_defaults.destination_bytes_per_s,
        metavar="BYTES",
        help="bytes a second to one destination address, all webhooks together (0: no "
        f"budget; default {hook_defaults.destination_bytes_per_s:g})",
    )
    webhooks.add_argument(
        "--webhook-backoff",
        type=float,
        default=1.0,
        help="seconds before the first retry; doubles up to 60 (default 1)",
    )
    limits = parser.add_argument_group("stream limits (docs/security.md)")
    limits.add_argument(
        "--stream-buffer-bytes",
        type=int,
        default=defaults.stream_buffer_bytes,
        metavar="BYTES",
        help="bytes of frames that may wait for one stream client (WebSocket or SSE) before "
        f"it is cut as a slow consumer (default {defaults.stream_buffer_bytes})",
    )
    limits.add_argument(
        "--streams-per-account",
        type=int,
        default=defaults.streams_per_account,
        metavar="N",
        help=f"streams one account may hold open (default {defaults.streams_per_account})",
    )
    limits.add_argument(
        "--stream-opens-per-min",
        type=float,
        default=defaults.stream_opens_per_min,
        metavar="N",
        help=f"streams one account may open per minute (default {defaults.stream_opens_per_min:g})",
    )
    limits.add_argument(
        "--stream-workers",
        type=int,
        default=defaults.stream_workers,
        metavar="N",
        help="processes that write the WebSocket streams (default 1: this one); raise it to "
        "the machine's cores when one core cannot keep up with the deliveries (README)",
    )
    parser.set_defaults(run=run)


def _limit_options(parser: argparse.ArgumentParser) -> None:
    """Who may do what, and how much (docs/security.md)."""
    limits = parser.add_argument_group("accounts and limits (docs/security.md)")
    limits.add_argument(
        "--registration",
        choices=("open", "closed"),
        default="open",
        help="open: anyone may register a new account with POST /v1/keys (default); closed: "
        "only `purpleflea keys create` issues keys",
    )
    limits.add_argument(
        "--keys-per-account",
        type=int,
        default=10,
        metavar="N",
        help="active keys an account's keys may mint up to (default 10)",
    )
    limits.add_argument(
        "--rate-limit",
        type=float,
        default=10.0,
        metavar="PER_S",
        help="REST requests per second per account, sustained (default 10)",
    )
    limits.add_argument(
        "--rate-burst",
        type=float,
        default=40.0,
        metavar="N",
        help="REST requests an account may burst above the rate (default 40)",
    )
    limits.add_argument(
        "--registrations-per-min",
        type=float,
        default=10.0,
        metavar="N",
        help=(
            "account registrations per minute per client address, ten times it per IPv6 /48 "
            "(default 10)"
        ),
    )
    limits.add_argument(
        "--connections-per-address",
        type=int,
        default=DEFAULT_PER_ADDRESS,
        metavar="N",
        help="connections (REST, SSE, WebSocket) one client address may hold open at once, "
        "IPv6 counted by /64, trusted proxies not counted; past it a connection gets a 503 and "
        f"is closed before its request is read; 0: no cap (default {DEFAULT_PER_ADDRESS})",
    )
    limits.add_argument(
        "--max-connections",
        type=int,
        default=None,
        metavar="N",
        help="connections (REST, SSE, WebSocket) the server holds open at once from all "
        "addresses together; past it a connection gets a 503 and is closed before its request "
        "is read; 0: no cap (default: the open-files limit, ulimit -n, less a reserve of 10%% "
        f"and at least {RESERVED_MIN} descriptors for the store, venues, workers and logs)",
    )
    limits.add_argument(
        "--trusted-proxy",
        action="append",
        default=[],
        metavar="ADDR",
        help="a reverse proxy (address or CIDR) whose X-Forwarded-For is believed; repeat for "
        "several (default: none, the headers are ignored)",
    )
    parser.add_argument(
        "--allowed-host",
        action="append",
        default=[],
        metavar="NAME",
        help="a name requests may be addressed to (Host) besides localhost, and, on another "
        "--host than loopback, besides IP addresses and this machine's names: the public name "
        "of a reverse proxy or load balancer, the names clients use; .NAME: the name and its "
        "subdomains, *.NAME: its subdomains, '*': any name (no DNS-rebinding guard); repeat "
        "for several (others get 421 misdirected)",
    )


def banner(host: str, port: int, source: str, data_dir: Path, store: str | None = None) -> str:
    """What ``serve`` prints when it answers. ``store``: a PostgreSQL store's URL, where the
    keys live (the key command names it; a key minted into the data folder's SQLite file
    would be refused by this server)."""
    url = f"http://{host}:{port}"
    if store is not None and is_postgres(store):
        where = f" --store {shlex.quote(redacted(store))}"
    else:
        where = f" --data-dir {data_dir}" if str(data_dir) != "data" else ""
    return "\n".join(
        [
            f"Purple Flea tracker: {url}  (source: {source}, data: {data_dir}/)",
            f"  Dashboard:  {url}/   (paste your API key once; it stays in the browser)",
            f"  API:        {url}/v1/liquidations  ·  OpenAPI: {url}/openapi.json",
            f"  Stream:     ws://{host}:{port}/v1/stream  ·  SSE: {url}/v1/stream/sse",
            f"  Health:     {url}/v1/health  ·  Metrics: {url}/v1/metrics",
            f"  Get a key:  purpleflea keys{where} create --account you",
            f'              (or: curl -X POST {url}/v1/keys -d \'{{"account":"you"}}\')',
            "  Watch:      PURPLEFLEA_API_KEY=<key> purpleflea tail"
            + (f" --url {url}" if port != 8000 or host != "127.0.0.1" else ""),
        ]
    )


def run(args: argparse.Namespace) -> int:
    """Serve until SIGINT or SIGTERM: the first stops gracefully (the exit status is then
    128 + the signal, :mod:`purpleflea.stopping`), a second at once; read at any moment of
    the startup too."""
    stop = ServeStop()
    stop.install()
    try:
        _run(args, stop)
    finally:
        stop.restore()
    if stop.requested:  # stopped: everything is closed, only the interpreter's exit is left
        from purpleflea.server.heap import leave_heap_to_exit  # noqa: PLC0415

        leave_heap_to_exit()
    return stop.exit_status()  # the stop was said when its signal came


def _run(args: argparse.Namespace, stop: ServeStop) -> None:
    source = args.source or ("none" if args.role == "api" else "sim")
    if source == "replay" and args.replay is None:
        raise SystemExit("purpleflea serve: --source replay needs --replay FILE")
    if source == "replay":
        # Before anything starts: a missing file used to surface as a traceback from the
        # source task after the banner, leaving a server up with nothing to replay.
        try:
            args.replay.open("rb").close()
        except OSError as exc:
            raise SystemExit(
                f"purpleflea serve: --replay {args.replay} cannot be read: {_reason(exc)}"
            ) from None
    try:
        config = _config(args, source)
    except ValueError as exc:
        raise SystemExit(f"purpleflea serve: {exc}") from None
    if not stop.requested:
        asyncio.run(_serve(config, stop))


def _config(args: argparse.Namespace, source: str) -> ServerConfig:
    from purpleflea.server.webhook_policy import WebhookSettings  # noqa: PLC0415

    private = {"auto": None, "allow": True, "refuse": False}[args.webhook_private_targets]
    rate = args.webhook_destination_rate
    for flag, value in (
        ("--webhook-destination-rate", rate),
        ("--webhook-destination-bytes", args.webhook_destination_bytes),
        ("--webhooks-per-host", args.webhooks_per_host),
    ):
        # Before the burst is derived from the rate: inf raised an OverflowError traceback
        # there, and nan "cannot convert float NaN to integer", naming no flag.
        if not math.isfinite(value) or value < 0:
            raise ValueError(f"{flag} must be a number 0 or more (0: no limit), got {value}")
    webhooks = WebhookSettings(
        attempts=args.webhook_attempts,
        backoff_s=args.webhook_backoff,
        backoff_max_s=max(60.0, args.webhook_backoff),
        allow_private=private,
        max_per_host=args.webhooks_per_host,
        destination_rate=rate,
        destination_burst=max(1, math.ceil(2 * rate)),
        destination_bytes_per_s=args.webhook_destination_bytes,
    )

    return ServerConfig(
        data_dir=args.data_dir,
        source=source,
        replay_path=args.replay,
        speed=args.speed,
        sim_seed=args.seed,
        sim_markets=args.markets,
        host=args.host,
        port=args.port,
        heartbeat_s=args.heartbeat,
        role=args.role,
        store_url=args.store,
        bus_url=args.bus,
        registration_open=args.registration == "open",
        keys_per_account=args.keys_per_account,
        rate_per_s=args.rate_limit,
        rate_burst=args.rate_burst,
        registrations_per_min=args.registrations_per_min,
        connections_per_address=args.connections_per_address,
        max_connections=args.max_connections,
        trusted_proxies=tuple(args.trusted_proxy),
        allowed_hosts=tuple(args.allowed_host),
        ingest_buffer=args.ingest_buffer,
        feed_silence_s=args.feed_silence,
        seq_floor=args.seq_floor,
        webhooks=webhooks,
        stream_buffer_bytes=args.stream_buffer_bytes,
        streams_per_account=args.streams_per_account,
        stream_opens_per_min=args.stream_opens_per_min,
        stream_workers=args.stream_workers,
        positions=position_settings(args, source),
    )


async def _serve(config: ServerConfig, stop: ServeStop) -> None:
    """Take the data folder, the store and the port, in that order, each failure one line
    naming its cause (no traceback), and only then print the banner and serve."""
    from purpleflea.server.app import writer_lock  # noqa: PLC0415
    from purpleflea.store.lock import DataDirBusy  # noqa: PLC0415

    held = contextlib.ExitStack()
    try:
        held.enter_context(writer_lock(config))
    except DataDirBusy as exc:
        raise SystemExit(f"purpleflea serve: {exc}") from None
    except OSError as exc:
        raise SystemExit(
            f"purpleflea serve: data dir {config.data_dir} is not writable: {_reason(exc)}"
        ) from None
    with held:
        if config.store_url is None and config.role != "api":
            from purpleflea.server.folder_source import mixed_source  # noqa: PLC0415

            refusal = mixed_source(config.data_dir, config.db_path, config.source)
            if refusal is not None:
                raise SystemExit(f"purpleflea serve: {refusal}")
        await _serve_locked(config, stop)


def _reason(exc: OSError) -> str:
    return exc.strerror or str(exc)


async def _serve_locked(config: ServerConfig, stop: ServeStop) -> None:
    # Server dependencies load only for `serve`.
    from purpleflea.server.app import create_app, open_server  # noqa: PLC0415
    from purpleflea.server.net import listen_socket  # noqa: PLC0415
    from purpleflea.server.serving import TrackerServer, uvicorn_config  # noqa: PLC0415

    if stop.requested:
        return
    try:
        # A standby ingest node waits here, port unbound: a signal cancels the wait (what
        # open_server opened it closes as it is cancelled).
        opening = asyncio.ensure_future(open_server(config))
        stop.cancel_while_waiting(opening)
        try:
            built = await opening
        finally:
            stop.done_waiting()
    except asyncio.CancelledError:
        if stop.requested:
            return
        raise
    except sqlite3.Error as exc:
        raise SystemExit(
            f"purpleflea serve: cannot open the store in {config.data_dir}: {exc}"
        ) from None
    except (ConnectionError, OSError, ValueError) as exc:
        raise SystemExit(f"purpleflea serve: {exc}") from None
    try:
        sock = listen_socket(config.host, config.port, send_buffer=config.socket_send_buffer)
    except OSError as exc:
        # The store and bus connections opened above close as the process exits (which also
        # hands a PostgreSQL sequencer lock to a standby at once).
        if isinstance(exc, socket.gaierror):  # the host, not the port, is what is wrong
            raise SystemExit(
                f"purpleflea serve: host {config.host!r} cannot be resolved: {_reason(exc)} "
                "(check --host: an address of this machine, e.g. 127.0.0.1 or 0.0.0.0)"
            ) from None
        if exc.errno == errno.EADDRNOTAVAIL:  # another machine's address: no port would do
            raise SystemExit(
                f"purpleflea serve: host {config.host} is not an address of this machine: "
                f"{_reason(exc)} (check --host: an address of this machine, e.g. 127.0.0.1 or "
                "0.0.0.0)"
            ) from None
        in_use = exc.errno == errno.EADDRINUSE
        raise SystemExit(
            f"purpleflea serve: port {config.port} on {config.host} "
            + ("is in use by another process" if in_use else f"cannot be used: {_reason(exc)}")
            + " (choose another with --port)"
        ) from None
    if config.port == 0:  # any free port: the banner and the address record say the real one
        config = dataclasses.replace(config, port=sock.getsockname()[1])
    built.startup_stop = stop  # a stop during the app's startup cancels it (app.py)
    app = create_app(config, server=built, lock=False)
    # Client commands run beside this one (`purpleflea tail`) find it through this record.
    address = None
    if config.role != "ingest":
        # And where its keys live: `purpleflea keys --data-dir` must not mint into a file
        # this server never reads.
        keys = redacted(config.store) if is_postgres(config.store) else None
        address = record_address(config.data_dir, client_url(config.host, config.port), keys=keys)

    class Server(TrackerServer):
        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            # ServeStop has the signals for the whole run (uvicorn would take them only
            # from here on, and raise them again as it returns).
            yield

        async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
            # Here, not after serve(): on SIGTERM uvicorn re-raises the signal as serve()
            # returns, which ends the process before any later line runs.
            if address is not None:
                remove_address(address)
            await super().shutdown(sockets)

    server = Server(uvicorn_config(app, config, built.connections), built.streams)
    # Stopped during the startup so far: uvicorn still starts the app (so that its stop is
    # the ordinary one, the store closed and the clean stop recorded), then stops it at once.
    stop.adopt(server)
    announcer = asyncio.create_task(_when_serving(server, config))
    try:
        await server.serve(sockets=[sock])
    finally:
        announcer.cancel()
        if address is not None:
            remove_address(address)


async def _when_serving(server: uvicorn.Server, config: ServerConfig) -> None:
    """Once the server answers requests, settle its heap and print the banner: the socket
    listens from the start, but until the app's startup (store warm-up, engine, source) is
    done a request would wait unanswered, and whoever reads the banner should be able to use
    it at once. uvicorn has no "started" event, only the flag."""
    while not server.started:
        if server.should_exit:
            return
        await asyncio.sleep(0.05)
    if server.should_exit:  # stopped during the startup: no banner for a server going away
        return
    from purpleflea.server.heap import settle_startup_heap  # noqa: PLC0415

    # Startup's objects (catalogs, the engine warmed from the store) live as long as the
    # process: out of the collector's sight, so its pauses stay short (server/heap.py).
    settle_startup_heap()
    _announce(config)


def _announce(config: ServerConfig) -> None:
    if config.role == "ingest":
        print(
            f"Purple Flea ingest node (source: {config.source}, store: {redacted(config.store)}, "
            f"bus: {redacted(config.bus_url or '')}): health and metrics on "
            f"http://{config.host}:{config.port}/v1/health",
            flush=True,
        )
    else:
        source = config.source if config.role == "all" else f"bus {redacted(config.bus_url or '')}"
        print(
            banner(config.host, config.port, source, config.data_dir, config.store_url),
            flush=True,
        )
