"""HTX's ``liquidation_orders`` notification connections, linear and coin-margined (gzip)."""

from __future__ import annotations

import json

from purpleflea.model import Catalog
from purpleflea.venues._connection import compact_json
from purpleflea.venues._frame import gunzip
from purpleflea.venues.htx.constants import EXCHANGE
from purpleflea.venues.htx.normalizer import TOPIC_SUFFIX
from purpleflea.venues.venue import Connection

URLS = {
    "linear": "wss://api.hbdm.com/linear-swap-notification",
    "coin": "wss://api.hbdm.com/swap-notification",
}


def subscribe() -> tuple[str, ...]:
    return (compact_json({"op": "sub", "cid": "1", "topic": f"public.*{TOPIC_SUFFIX}"}),)


def answer(frame: bytes | str) -> str | None:
    """HTX's gzip ``{"op":"ping","ts":T}`` -> ``{"op":"pong","ts":T}`` (``{"ping":T}`` too)."""
    data = gunzip(EXCHANGE, frame) if isinstance(frame, bytes) else frame.encode()
    if b"ping" not in data:
        return None
    try:
        message = json.loads(data)
    except ValueError:
        return None
    if not isinstance(message, dict):
        return None
    if message.get("op") == "ping":
        return compact_json({"op": "pong", "ts": message.get("ts")})
    if "ping" in message:
        return compact_json({"pong": message["ping"]})
    return None


def connections(instruments: Catalog) -> list[Connection]:
    # HTX pings every few seconds and expects each answered; its pings feed the watchdog.
    del instruments  # "public.*" subscribes to every contract
    return [
        Connection(
            name=f"{EXCHANGE}_{kind}",
            exchange=EXCHANGE,
            url=url,
            subscribe=subscribe(),
            answer=answer,
            silence_timeout=30.0,
        )
        for kind, url in URLS.items()
    ]
