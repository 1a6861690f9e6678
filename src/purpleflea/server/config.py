"""Server settings, with the defaults a single-machine install wants."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from purpleflea.server.conncap import DEFAULT_PER_ADDRESS
from purpleflea.server.host_check import check_allowed_host
from purpleflea.server.webhook_policy import WebhookSettings

if TYPE_CHECKING:  # the samplers' module is only loaded when sampling is on
    from purpleflea.server.measured import PositionSettings

ROLES = ("all", "ingest", "api")


@dataclass(frozen=True)
class ServerConfig:
    """Everything ``purpleflea serve`` can set.

    ``source``: ``sim`` (the built-in market simulator, offline), ``live`` (the exchanges'
    public websockets), ``replay`` (a JSON-lines file of events, paced by their timestamps) or
    ``none`` (events arrive only through :meth:`Pipeline.submit`, as in tests).

    Scale-out (docs/scaleout.md): ``role`` is ``all`` (one process does everything, the
    default), ``ingest`` (source, tracker, cascade engine and heatmap model; publishes on the
    bus) or ``api`` (no source: serves clients from the bus and the store). ``store_url``: None
    is the SQLite file in ``data_dir``, else a :func:`purpleflea.store.factory.open_store` URL.
    ``bus_url``: None is the in-process bus, else ``nats://host:port`` (optionally
    ``?stream=NAME&prefix=PREFIX`` to share one NATS server between several trackers).
    """

    data_dir: Path = Path("data")
    source: str = "sim"
    replay_path: Path | None = None
    speed: float = 1.0
    sim_seed: int = 0
    sim_markets: int = 275
    host: str = "127.0.0.1"
    port: int = 8000
    heartbeat_s: float = 10.0
    #: Bytes of frames waiting for one stream client (WebSocket or SSE), beyond what its
    #: socket has taken, before it is disconnected as a slow consumer: 4 MiB is about
    #: 12,000 events, several seconds of the busiest market days.
    stream_buffer_bytes: int = 4 * 1024 * 1024
    #: Streams (WebSocket and SSE together) one account may hold open at once.
    streams_per_account: int = 20
    #: Stream opens per minute per account (sustained; a burst may use a minute's worth).
    stream_opens_per_min: float = 60.0
    #: Processes that write the WebSocket streams (1: this one, as before); see
    #: :mod:`purpleflea.server.workers` and the README's server section for when to raise it.
    stream_workers: int = 1
    #: Kernel send buffer per client socket (bytes); see :mod:`purpleflea.server.net`.
    socket_send_buffer: int = 262_144
    #: REST requests per second per account (sustained) and burst: an account's keys share
    #: one budget, so minting keys buys no extra rate.
    rate_per_s: float = 10.0
    rate_burst: float = 40.0
    #: Connections (REST, SSE, WebSocket) one client address may hold open at once, an IPv6
    #: client counted by its /64 and a trusted proxy not at all; 0: no cap. See
    #: :mod:`purpleflea.server.conncap`.
    connections_per_address: int = DEFAULT_PER_ADDRESS
    #: Connections the whole process holds open at once (all addresses, trusted proxies
    #: included); None: RLIMIT_NOFILE less a reserve for the server's own descriptors
    #: (:func:`purpleflea.server.conncap.process_cap`); 0: no cap.
    max_connections: int | None = None
    #: Key registrations per minute per client address.
    registrations_per_min: float = 10.0
    #: Whether anyone may register a new account (``POST /v1/keys`` without a key); closed,
    #: only the operator's ``purpleflea keys create`` issues keys.
    registration_open: bool = True
    #: Active keys an account may hold when its keys mint more (the operator is not capped).
    keys_per_account: int = 10
    #: Addresses (or CIDR ranges) of reverse proxies whose ``X-Forwarded-For`` /
    #: ``X-Forwarded-Proto`` are believed; empty: the headers are ignored, the peer address is
    #: the client's.
    trusted_proxies: tuple[str, ...] = ()
    #: Host names the server answers besides loopback ones (and, on another bind than
    #: loopback, IP addresses and this machine's names): a reverse proxy's public name, the
    #: names clients use; ``.NAME`` / ``*.NAME`` for subdomains, ``*`` for any name. See
    #: ``server.host_check``.
    allowed_hosts: tuple[str, ...] = ()
    #: How often the server checks the key store for revocations made elsewhere (CLI).
    revocation_poll_s: float = 0.5
    role: str = "all"
    store_url: str | None = None
    bus_url: str | None = None
    #: How often an ingest node publishes the heatmaps of markets whose model changed.
    heatmap_publish_s: float = 1.0
    #: Events waiting for the store at most (a failing or slow store); beyond it new events
    #: are dropped and counted (``dropped_buffer_full`` in /v1/health and /v1/metrics).
    ingest_buffer: int = 200_000
    #: A feed silent this long (s) makes /v1/health ``degraded``.
    feed_silence_s: float = 60.0
    #: Number after at least this seq, and accept a SQLite store file other than the one its
    #: seq mark was written beside (a restored backup, a moved folder): store/seqmark.py.
    seq_floor: int | None = None
    #: Webhook delivery: retries, backoff, queues, limits, private targets (docs/webhooks.md).
    webhooks: WebhookSettings = field(default_factory=WebhookSettings)
    #: Sample per-account positions where a venue publishes them, for the measured heatmap
    #: (``?source=measured``); None: off.
    positions: PositionSettings | None = None

    def __post_init__(self) -> None:
        if self.ingest_buffer < 1:
            raise ValueError(f"ingest buffer must be at least 1 event, got {self.ingest_buffer}")
        # `not x > 0`, not `x <= 0`: a NaN (`--heartbeat nan`) is neither, and was let through.
        if not self.feed_silence_s > 0:
            raise ValueError(f"feed silence must be above 0 s, got {self.feed_silence_s:g}")
        if not 0 <= self.port <= 65_535:
            raise ValueError(f"port must be 0 (any free port) to 65535, got {self.port}")
        if not self.speed > 0:
            # Checked here, before anything starts: the source used to refuse it only after
            # the banner, leaving a server that answered with no source behind it.
            raise ValueError(f"speed must be above 0 (1 is real time), got {self.speed:g}")
        for name in (
            "heartbeat_s",
            "stream_buffer_bytes",
            "streams_per_account",
            "stream_opens_per_min",
        ):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)!r}")
        if self.stream_workers < 1:
            raise ValueError(f"stream_workers must be at least 1, got {self.stream_workers}")
        if self.stream_workers > 1 and self.role == "ingest":
            raise ValueError(
                "role 'ingest' serves no streams: --stream-workers belongs on the API nodes"
            )
        if self.role not in ROLES:
            raise ValueError(f"role must be one of {', '.join(ROLES)}, got {self.role!r}")
        if self.role != "all" and self.bus_url is None:
            raise ValueError(
                f"role {self.role!r} needs a shared bus (--bus nats://host:4222): the "
                "in-process bus cannot reach another process"
            )
        for name in self.allowed_hosts:
            check_allowed_host(name)
        for proxy in self.trusted_proxies:
            try:
                ipaddress.ip_network(proxy, strict=False)
            except ValueError:
                raise ValueError(
                    f"trusted proxy {proxy!r} is not an IP address or CIDR range"
                ) from None
        if self.connections_per_address < 0:
            raise ValueError(
                "connections_per_address must be 0 (no cap) or more, got "
                f"{self.connections_per_address}"
            )
        if self.max_connections is not None and self.max_connections < 0:
            raise ValueError(
                f"max_connections must be 0 (no cap) or more, got {self.max_connections}"
            )
        if self.keys_per_account < 1:
            raise ValueError(f"keys_per_account must be at least 1, got {self.keys_per_account}")
        if not (self.rate_per_s > 0 and self.rate_burst >= 1 and self.registrations_per_min > 0):
            raise ValueError(
                f"rate limits must be positive (rate {self.rate_per_s}/s, burst "
                f"{self.rate_burst}, registrations {self.registrations_per_min}/min)"
            )
        if self.store_url is not None:
            # Imported here: the store modules load only for a server given a store URL.
            from purpleflea.store.factory import check_postgres_url  # noqa: PLC0415

            check_postgres_url(self.store_url)
        if self.seq_floor is not None:
            self._check_seq_floor(self.seq_floor)
        if self.role == "api" and self.source != "none":
            raise ValueError(
                f"role 'api' runs no source (got source {self.source!r}): events come from "
                "the ingest node over the bus"
            )

    def _check_seq_floor(self, floor: int) -> None:
        """``--seq-floor`` raises the seq mark beside a SQLite store this node numbers; where
        there is none it would be taken and do nothing (it was, silently)."""
        if floor < 0:
            raise ValueError(f"--seq-floor must be a seq, 0 or more, got {floor}")
        if self.role == "api":
            raise ValueError(
                "--seq-floor is for the node that numbers events (role ingest or all, on a "
                "SQLite store); an api node assigns no seq"
            )
        from purpleflea.store.factory import is_postgres  # noqa: PLC0415

        if self.store_url is not None and is_postgres(self.store_url):
            raise ValueError(
                "--seq-floor is for a SQLite store (the seq mark beside its file); a "
                "PostgreSQL store commits each seq with its event, so its nodes need no mark "
                "and no floor"
            )

    @property
    def store(self) -> str:
        """The store URL, the SQLite file in ``data_dir`` when none was given."""
        return self.store_url if self.store_url is not None else str(self.db_path)

    @property
    def db_path(self) -> Path:
        return self.data_dir / "purpleflea.sqlite"

    @property
    def keys_path(self) -> Path:
        return self.data_dir / "keys.sqlite"
