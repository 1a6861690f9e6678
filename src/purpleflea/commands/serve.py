"""``purpleflea serve``: run the tracker (simulated markets by default, fully offline).

``--role ingest|api`` with ``--store postgresql://...`` and ``--bus nats://...`` splits it over
several processes or machines (docs/scaleout.md).
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

from purpleflea.server.config import ROLES, ServerConfig


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    defaults = ServerConfig()
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
    parser.add_argument("--markets", type=int, default=275, help="simulated markets")
    parser.add_argument("--heartbeat", type=float, default=10.0, help="stream heartbeat, s")
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
    parser.set_defaults(run=run)


def banner(host: str, port: int, source: str, data_dir: Path) -> str:
    url = f"http://{host}:{port}"
    return "\n".join(
        [
            f"Purple Flea tracker: {url}  (source: {source}, data: {data_dir}/)",
            f"  Dashboard:  {url}/   (paste your API key once; it stays in the browser)",
            f"  API:        {url}/v1/liquidations  ·  OpenAPI: {url}/openapi.json",
            f"  Stream:     ws://{host}:{port}/v1/stream  ·  SSE: {url}/v1/stream/sse",
            f"  Health:     {url}/v1/health  ·  Metrics: {url}/v1/metrics",
            "  Get a key:  purpleflea keys"
            + (f" --data-dir {data_dir}" if str(data_dir) != "data" else "")
            + " create --account you",
            f'              (or: curl -X POST {url}/v1/keys -d \'{{"account":"you"}}\')',
            "  Watch:      PURPLEFLEA_API_KEY=<key> purpleflea tail"
            + (f" --url {url}" if port != 8000 or host != "127.0.0.1" else ""),
        ]
    )


def run(args: argparse.Namespace) -> int:
    source = args.source or ("none" if args.role == "api" else "sim")
    if source == "replay" and args.replay is None:
        raise SystemExit("purpleflea serve: --source replay needs --replay FILE")
    try:
        config = _config(args, source)
    except ValueError as exc:
        raise SystemExit(f"purpleflea serve: {exc}") from None
    asyncio.run(_serve(config))
    return 0


def _config(args: argparse.Namespace, source: str) -> ServerConfig:
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
        stream_buffer_bytes=args.stream_buffer_bytes,
        streams_per_account=args.streams_per_account,
        stream_opens_per_min=args.stream_opens_per_min,
    )


async def _serve(config: ServerConfig) -> None:
    # Server dependencies load only for `serve`.
    from purpleflea.server.app import create_app, open_server  # noqa: PLC0415
    from purpleflea.server.net import listen_socket  # noqa: PLC0415
    from purpleflea.server.serving import TrackerServer, uvicorn_config  # noqa: PLC0415

    try:
        built = await open_server(config)
    except (ConnectionError, OSError, ValueError) as exc:
        raise SystemExit(f"purpleflea serve: {exc}") from None
    app = create_app(config, server=built)
    sock = listen_socket(config.host, config.port, send_buffer=config.socket_send_buffer)
    server = TrackerServer(uvicorn_config(app), built.streams)
    if config.role == "ingest":
        print(
            f"Purple Flea ingest node (source: {config.source}, store: {config.store}, "
            f"bus: {config.bus_url}): health and metrics on "
            f"http://{config.host}:{config.port}/v1/health",
            flush=True,
        )
    else:
        source = config.source if config.role == "all" else f"bus {config.bus_url}"
        print(banner(config.host, config.port, source, config.data_dir), flush=True)
    await server.serve(sockets=[sock])
