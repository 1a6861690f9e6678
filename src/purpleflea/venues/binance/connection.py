"""Binance's ``!forceOrder@arr`` connections, one per exchange id (shared/EXCHANGES.md)."""

from __future__ import annotations

from purpleflea.model import Catalog
from purpleflea.venues._connection import as_text, compact_json, json_object, mentions
from purpleflea.venues.binance.constants import COINM, USDM
from purpleflea.venues.venue import Connection

#: The one stream: every symbol's liquidation snapshots.
STREAM = "!forceOrder@arr"

# Trap 3: forceOrder moved to the /market split; the legacy URL connects but stays silent.
USDM_URL = "wss://fstream.binance.com/market/ws"
COINM_URL = "wss://dstream.binance.com/ws"


SUBSCRIBE_ID = 1


def subscribe() -> tuple[str, ...]:
    return (compact_json({"method": "SUBSCRIBE", "params": [STREAM], "id": SUBSCRIBE_ID}),)


def subscribed(frame: bytes | str) -> bool:
    """Binance's answer to our SUBSCRIBE: ``{"result":null,"id":1}``, or an error reply
    carrying its id (:func:`refusal` reads both shapes)."""
    message = json_object(frame)
    if message is None or message.get("id") != SUBSCRIBE_ID:
        return False
    return "result" in message or "error" in message or "code" in message


# Binance pings at the protocol level (every 3 minutes; websockets answers), which the watchdog
# never sees, and the stream is a 1 s snapshot that can be quiet for many minutes: the
# watchdog had to wait 300 s (USD-M) and 900 s (COIN-M) to call a dead connection dead, and
# Binance has no endpoint to repair the gap. Asking for the connection's subscriptions
# (LIST_SUBSCRIPTIONS, in Binance's stream docs and its connectors' websocket client) gets an
# answer every interval, and the answer shows the stream is still subscribed.
LIST_ID = 2
KEEPALIVE = compact_json({"method": "LIST_SUBSCRIPTIONS", "id": LIST_ID})
KEEPALIVE_INTERVAL = 30.0
SILENCE_TIMEOUT = 3 * KEEPALIVE_INTERVAL
# Trap 3: a decommissioned URL or a restricted region completes the handshake and may answer
# requests while sending no liquidation. The answers keep the connection "alive", so the data
# has its own watchdog, as long as the snapshot stream's quietest stretches (the watchdog's
# values before the keepalive; COIN-M lists far fewer contracts).
# "A single connection is only valid for 24 hours; expect to be disconnected at the 24 hour
# mark" (the USD-M and COIN-M websocket-market-streams pages): the runner connects the
# replacement a minute before, so the close loses no liquidation (ingest/handover.py).
LIFETIME = 24 * 3600.0
HANDOVER_LEAD = 60.0
USDM_DATA_TIMEOUT = 300.0
COINM_DATA_TIMEOUT = 900.0


def refusal(frame: bytes | str) -> str | None:
    """Binance's error reply: ``{"error":{"code":2,"msg":..},"id":1}`` as servers send it, or
    the documented ``{"code":0,"msg":"Unknown property","id":1}``; and a LIST_SUBSCRIPTIONS
    answer without our stream (Binance acks even an unknown stream name with
    ``{"result":null}``, so that answer is where a lost subscription shows)."""
    message = json_object(frame)
    if message is None:
        return None
    if message.get("error") is not None:
        return as_text(message["error"])
    if "code" in message and "msg" in message:
        return f"{as_text(message['code'])}: {as_text(message['msg'])}"
    return unsubscribed(frame)


def retry_refused(frame: bytes | str) -> bool:
    """Whether Binance's refusal ``frame`` may pass when asked again: never. Its stream
    requests have four error codes, each naming something wrong in the request (the
    websocket-market-streams "Error Messages": 0 "Unknown property", 1 "Invalid value type",
    2 "Invalid request: ..." (an unknown method, a bad id, too many parameters, a missing
    field), 3 "Invalid JSON"), and no rate-limit answer: a connection over 10 messages a second
    is disconnected instead. Our SUBSCRIBE is fixed, so a refusal is ours to fix: one ERROR,
    listed in health's ``rejected``. (The LIST_SUBSCRIPTIONS answer without our stream is
    also read by :func:`refusal`, and as the connection's ``closing``: it is handed over,
    not sorted.)"""
    del frame
    return False


def unsubscribed(frame: bytes | str) -> str | None:
    """A LIST_SUBSCRIPTIONS answer without our stream -> what it says: nothing more will come
    on this connection, so the runner replaces it (its ``closing`` reader) at once, rather
    than warning at every keepalive until the data watchdog gives up."""
    if not mentions(frame, "result"):
        return None  # every liquidation frame comes here
    message = json_object(frame)
    if message is None or message.get("id") != LIST_ID:
        return None
    result = message.get("result")
    wanted = STREAM.casefold()  # stream names are case-insensitive at Binance
    if isinstance(result, list) and not any(
        isinstance(name, str) and name.casefold() == wanted for name in result
    ):
        return f"{STREAM} is no longer subscribed: LIST_SUBSCRIPTIONS answered {as_text(result)}"
    return None


def _connection(exchange: str, url: str, data_timeout: float) -> Connection:
    return Connection(
        exchange,
        exchange,
        url,
        subscribe(),
        keepalive=KEEPALIVE,
        keepalive_interval=KEEPALIVE_INTERVAL,
        silence_timeout=SILENCE_TIMEOUT,
        refusal=refusal,
        retry_refused=retry_refused,
        subscribed=subscribed,
        closing=unsubscribed,
        data_timeout=data_timeout,
        lifetime=LIFETIME,
        handover_lead=HANDOVER_LEAD,
    )


def usdm_connections(instruments: Catalog) -> list[Connection]:
    del instruments  # one stream carries every symbol
    return [_connection(USDM, USDM_URL, USDM_DATA_TIMEOUT)]


def coinm_connections(instruments: Catalog) -> list[Connection]:
    del instruments
    return [_connection(COINM, COINM_URL, COINM_DATA_TIMEOUT)]
