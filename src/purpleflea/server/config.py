"""Server settings, with the defaults a single-machine install wants."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ServerConfig:
    """Everything ``purpleflea serve`` can set.

    ``source``: ``sim`` (the built-in market simulator, offline), ``live`` (the exchanges'
    public websockets), ``replay`` (a JSON-lines file of events, paced by their timestamps) or
    ``none`` (events arrive only through :meth:`Tracker.submit`, as in tests).
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
    #: Messages buffered per stream client before it is disconnected as a slow consumer.
    client_buffer: int = 20_000
    #: Kernel send buffer per client socket (bytes); see :mod:`purpleflea.server.net`.
    socket_send_buffer: int = 262_144
    #: REST requests per second per key (sustained) and burst.
    rate_per_s: float = 10.0
    rate_burst: float = 40.0
    #: Key registrations per minute per client address.
    registrations_per_min: float = 10.0
    #: How often the server checks the key store for revocations made elsewhere (CLI).
    revocation_poll_s: float = 0.5

    @property
    def db_path(self) -> Path:
        return self.data_dir / "purpleflea.sqlite"

    @property
    def keys_path(self) -> Path:
        return self.data_dir / "keys.sqlite"
