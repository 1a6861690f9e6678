"""OKX's public ``liquidation-orders`` connection (shared/EXCHANGES.md, OKX)."""

from __future__ import annotations

from purpleflea.model import Catalog
from purpleflea.venues._connection import compact_json, event_error
from purpleflea.venues.okx.constants import EXCHANGE
from purpleflea.venues.okx.normalizer import CHANNEL
from purpleflea.venues.venue import Connection

# The default TLS port: OKX stopped accepting WebSocket connections on port 8443 on 2026-10-31
# (a public OKX client's migration note), and a public capture of 2026-10-07 shows this
# address serving the same channels, liquidation-orders included.
URL = "wss://ws.okx.com/ws/v5/public"


def subscribe() -> tuple[str, ...]:
    args = [{"channel": CHANNEL, "instType": kind} for kind in ("SWAP", "FUTURES")]
    return (compact_json({"op": "subscribe", "args": args}),)


def connections(instruments: Catalog) -> list[Connection]:
    # OKX drops a connection after 30 s without traffic: a text ping keeps it (and the
    # watchdog) fed with pongs.
    del instruments  # one channel per instrument type carries every contract
    return [
        Connection(
            name="okx",
            exchange=EXCHANGE,
            url=URL,
            subscribe=subscribe(),
            keepalive="ping",
            keepalive_interval=20.0,
            silence_timeout=60.0,
            refusal=event_error,
        )
    ]
