"""Deribit's ``trades.future.any.100ms`` connection over JSON-RPC (EXCHANGES.md, Deribit)."""

from __future__ import annotations

from purpleflea.model import Catalog
from purpleflea.venues._connection import (
    as_text,
    compact_json,
    error_object_code_in,
    json_object,
    mentions,
)
from purpleflea.venues.deribit.constants import EXCHANGE
from purpleflea.venues.venue import Connection

URL = "wss://www.deribit.com/ws/api/v2"
# Deribit's set_heartbeat minimum is 10 s; it then sends test_request every interval.
HEARTBEAT_S = 30
#: Every future's trades, perpetual and dated, inverse and linear, of every currency:
#: ``trades.{kind}.{currency}.{interval}`` with kind ``future`` and currency ``any``
#: (docs.deribit.com, subscriptions/trades). One channel instead of one per instrument, so a
#: future listed after we connect is carried too, and an expired one leaves nothing behind
#: (Deribit acks an unknown instrument channel with an empty result, silently).
CHANNEL = "trades.future.any.100ms"


#: The JSON-RPC ids of our two requests: the heartbeat's and the subscribe's.
HEARTBEAT_ID = 1
SUBSCRIBE_ID = 2


def subscribe() -> tuple[str, ...]:
    heartbeat = {
        "jsonrpc": "2.0",
        "id": HEARTBEAT_ID,
        "method": "public/set_heartbeat",
        "params": {"interval": HEARTBEAT_S},
    }
    subscribe = {
        "jsonrpc": "2.0",
        "id": SUBSCRIBE_ID,
        "method": "public/subscribe",
        "params": {"channels": [CHANNEL]},
    }
    return (compact_json(heartbeat), compact_json(subscribe))


def answer(frame: bytes | str) -> str | None:
    """``{"method":"heartbeat","params":{"type":"test_request"}}`` -> ``public/test``."""
    if "test_request" not in (frame if isinstance(frame, str) else frame.decode("latin-1")):
        return None
    message = json_object(frame)
    if message is None or message.get("method") != "heartbeat":
        return None  # not a ping; the normalizer will judge the frame
    params = message.get("params")
    if not isinstance(params, dict):
        return None
    if params.get("type") != "test_request":
        return None
    return compact_json({"jsonrpc": "2.0", "id": 9, "method": "public/test", "params": {}})


def refusal(frame: bytes | str) -> str | None:
    """A JSON-RPC error reply (``{"jsonrpc":"2.0","id":2,"error":{"code":..,"message":..}}``),
    or an answer to our subscribe that leaves our channel out.

    Deribit answers ``public/subscribe`` with "a list of subscribed channels" (its API
    reference) and refuses a channel it does not serve by leaving it out of that list, with
    no error: ``{"jsonrpc":"2.0","id":3997,"result":[],..}`` for an option book channel, as
    received and reported in adampointer/go-deribit issue 16 (2019-06-20; the library then
    made an empty subscribe result an error, its PR 13). That answer is the only word that
    nothing will come: the heartbeats go on being answered and no data watchdog is set."""
    if mentions(frame, "error"):
        message = json_object(frame)
        if message is not None and message.get("error") is not None:
            return as_text(message["error"])
    return left_out(frame)


def left_out(frame: bytes | str) -> str | None:
    """Our subscribe's answer without our channel -> what it says; None for any other frame
    (every trade frame comes here: a substring test before parsing)."""
    if not mentions(frame, "result"):
        return None
    message = json_object(frame)
    if message is None or message.get("id") != SUBSCRIBE_ID or "error" in message:
        return None
    result = message.get("result")
    if isinstance(result, list) and CHANNEL in result:
        return None
    return f"public/subscribe answered {as_text(result)}: {CHANNEL} is not subscribed"


#: Deribit's JSON-RPC error codes that a later request can pass: 10028 ``too_many_requests``
#: (docs.deribit.com, "Error Codes": "Rate limit exceeded. Wait and retry with backoff"),
#: 10040 ``retry``, 10066 ``too_many_concurrent_requests``, 11051 ``system_maintenance``,
#: 11094 ``internal_server_error``, 13028 ``temporarily_unavailable``, 13888 ``timed_out``
#: (the codes nautilus_trader retries, its ``DERIBIT_RETRY_ERROR_CODES``, after the same
#: reference). Any other error names something wrong in the request (-32602 invalid params,
#: 11050 bad_request): asking again gets the same answer.
RETRYABLE_CODES = frozenset({10028, 10040, 10066, 11051, 11094, 13028, 13888})


#: Whether Deribit's refusal ``frame`` may pass when asked again on a new connection (a
#: subscribe answered without our channel has no error object: the same answer next time).
retry_refused = error_object_code_in(RETRYABLE_CODES)


def subscribed(frame: bytes | str) -> bool:
    """Deribit's answer to our ``public/subscribe`` (id 2): its result, or its error."""
    if not mentions(frame, "id"):
        return False  # subscription pushes carry no id
    message = json_object(frame)
    return message is not None and message.get("id") == SUBSCRIBE_ID


def connections(instruments: Catalog) -> list[Connection]:
    """One connection carrying every future's trades; the catalog is not needed."""
    del instruments
    return [
        Connection(
            name=EXCHANGE,
            exchange=EXCHANGE,
            url=URL,
            subscribe=subscribe(),
            answer=answer,
            refusal=refusal,
            retry_refused=retry_refused,
            subscribed=subscribed,
            silence_timeout=2.5 * HEARTBEAT_S,
        )
    ]
