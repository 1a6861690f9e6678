"""OKX's public ``liquidation-orders`` connection (shared/EXCHANGES.md, OKX)."""

from __future__ import annotations

from purpleflea.model import Catalog
from purpleflea.venues._connection import (
    ALL_MARKET_DATA_TIMEOUT,
    as_text,
    compact_json,
    error_code_in,
    event_error,
    json_object,
    mentions,
)
from purpleflea.venues.okx.catalog import INSTRUMENTS_CHANNEL, pushed
from purpleflea.venues.okx.constants import EXCHANGE
from purpleflea.venues.okx.normalizer import CHANNEL
from purpleflea.venues.venue import Connection

# The default TLS port: OKX stopped accepting WebSocket connections on port 8443 on 2026-10-31
# (a public OKX client's migration note), and a public capture of 2026-10-07 shows this
# address serving the same channels, liquidation-orders included.
URL = "wss://ws.okx.com/ws/v5/public"


def subscribe() -> tuple[str, ...]:
    """Liquidations of every swap and future, and their instruments: OKX pushes the whole
    list once subscribed and each contract whose state changes after (``catalog.pushed``), a
    contract's new value among them, applied to the catalog from then on."""
    kinds = ("SWAP", "FUTURES")
    args = [{"channel": channel, "instType": kind} for channel in CHANNELS for kind in kinds]
    return (compact_json({"op": "subscribe", "args": args}),)


#: The channels subscribed, each for SWAP and FUTURES: four args of one subscribe (one of the
#: 480 subscribe requests a connection may send an hour).
CHANNELS = (CHANNEL, INSTRUMENTS_CHANNEL)


#: The code of OKX's notice that a service upgrade will close the connection.
UPGRADE_NOTICE = "64008"


def closing(frame: bytes | str) -> str | None:
    """OKX's ``{"event":"notice","code":"64008","msg":"The connection will soon be closed for a
    service upgrade. Please reconnect.","connId":..}``, sent 30 s before the upgrade closes the
    socket (OKX WebSocket docs, "Notifications"; the frame as clients received it in
    sieblyio/okx-api issue 141, 2025-09-09, and yubing744/trading-gpt issue 90, 2026-07-07,
    about every 15-20 minutes there). Other notices are not read as a close."""
    if not mentions(frame, "notice"):
        return None  # every liquidation frame comes here
    message = json_object(frame)
    if message is None or message.get("event") != "notice":
        return None
    if str(message.get("code")) != UPGRADE_NOTICE:
        return None
    return f"{UPGRADE_NOTICE}: {as_text(message.get('msg'))}"


#: OKX's websocket error codes worth asking again: 60014 "Requests too frequent", 60016
#: "Buffer is full, cannot write data", 63999 "Internal system error" (OKX v5 docs, "Error
#: Code", WebSocket public). Every other refusal of our subscribe names something wrong in it
#: (60012 illegal request, 60013 invalid args, 60018 "... doesn't exist", 60008/60028 a
#: channel of the other URL): asking again gets the same answer.
RETRYABLE_REFUSALS = frozenset({"60014", "60016", "63999"})

#: Whether OKX's refusal ``frame`` (``{"event":"error","code":..}``) may pass when asked again
#: on a new connection.
retry_refused = error_code_in(RETRYABLE_REFUSALS)


def subscribed(frame: bytes | str) -> bool:
    """OKX's answer to a subscribe: ``{"event":"subscribe","arg":..}`` per channel, or
    ``{"event":"error",..}``."""
    if not mentions(frame, "event"):
        return False  # every liquidation frame comes here until the answer
    message = json_object(frame)
    return message is not None and message.get("event") in ("subscribe", "error")


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
            retry_refused=retry_refused,
            closing=closing,
            subscribed=subscribed,
            contracts=pushed,
            # Every swap and future: the measured all-market bound holds (its gaps are shorter).
            data_timeout=ALL_MARKET_DATA_TIMEOUT,
        )
    ]
