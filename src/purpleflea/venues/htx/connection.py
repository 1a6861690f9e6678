"""HTX's ``liquidation_orders`` notification connections (gzip frames).

Three endpoints: linear swaps and futures (``public.*``), coin-margined swaps (``public.*``)
and coin-margined delivery futures, whose topic is per coin (``public.BTC.liquidation_orders``,
HTX's "Subscribe Liquidation Order Data(No authentication)" on ``/notification``; tardis-node
subscribes the same way), so that connection subscribes each coin of the catalog's
coin-margined contracts on every connect.
"""

from __future__ import annotations

from collections.abc import Sequence

from purpleflea.model import Catalog
from purpleflea.venues._connection import as_text, compact_json, json_object
from purpleflea.venues._frame import gunzip
from purpleflea.venues.htx.constants import EXCHANGE
from purpleflea.venues.htx.normalizer import TOPIC_SUFFIX
from purpleflea.venues.venue import Connection

URLS = {
    "linear": "wss://api.hbdm.com/linear-swap-notification",
    "coin": "wss://api.hbdm.com/swap-notification",
    "futures": "wss://api.hbdm.com/notification",
}


def subscribe(targets: Sequence[str] = ("*",)) -> tuple[str, ...]:
    """One ``sub`` per target: ``*`` (every contract) or a coin (``BTC``)."""
    return tuple(
        compact_json({"op": "sub", "cid": "1", "topic": f"public.{target}{TOPIC_SUFFIX}"})
        for target in targets
    )


def coin_margined_coins(instruments: Catalog) -> list[str]:
    """Coins of the catalog's coin-margined contracts: ``BTC-USD`` and ``BTC210813`` -> BTC."""
    return sorted(
        {
            symbol.split("-", 1)[0] if "-" in symbol else symbol[:-6]
            for symbol, instrument in instruments.items()
            if instrument.kind == "inverse"
        }
        - {""}
    )


def answer(frame: bytes | str) -> str | None:
    """HTX's gzip ``{"op":"ping","ts":T}`` -> ``{"op":"pong","ts":T}`` (``{"ping":T}`` too)."""
    data = gunzip(EXCHANGE, frame) if isinstance(frame, bytes) else frame.encode()
    if b"ping" not in data:
        return None
    message = json_object(data)
    if message is None:
        return None
    if message.get("op") == "ping":
        return compact_json({"op": "pong", "ts": message.get("ts")})
    if "ping" in message:
        return compact_json({"pong": message["ping"]})
    return None


def refusal(frame: bytes | str) -> str | None:
    """HTX's reply with a non-zero ``err-code`` (``{"op":"sub",..,"err-code":4001,
    "err-msg":..}``; acks carry ``"err-code":0``), gzipped like every HTX frame."""
    message = json_object(gunzip(EXCHANGE, frame) if isinstance(frame, bytes) else frame)
    if message is None or message.get("err-code") in (None, 0, "0"):
        return None
    return f"{as_text(message['err-code'])}: {as_text(message.get('err-msg'))}"


def connections(instruments: Catalog) -> list[Connection]:
    # HTX pings every few seconds and expects each answered; its pings feed the watchdog.
    def per_coin() -> tuple[str, ...]:
        return subscribe(coin_margined_coins(instruments))

    return [
        Connection(
            name=f"{EXCHANGE}_{kind}",
            exchange=EXCHANGE,
            url=url,
            subscribe=per_coin if kind == "futures" else subscribe(),
            answer=answer,
            refusal=refusal,
            silence_timeout=30.0,
            # HTX: "40 subscriptions at most can be sent in one second" on one connection.
            subscribe_pause=0.05 if kind == "futures" else 0.0,
        )
        for kind, url in URLS.items()
    ]
