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
from purpleflea.venues._connection import as_text, compact_json, containing, json_object
from purpleflea.venues._frame import gunzip
from purpleflea.venues.htx.constants import EXCHANGE
from purpleflea.venues.htx.normalizer import TOPIC_SUFFIX
from purpleflea.venues.venue import Batching, Connection, Reply

URLS = {
    "linear": "wss://api.hbdm.com/linear-swap-notification",
    "coin": "wss://api.hbdm.com/swap-notification",
    "futures": "wss://api.hbdm.com/notification",
}


#: The liveness channel (docs/live.md, "Keeping each connection alive"): one contract's
#: ``contract_info`` on the same endpoint. HTX's docs ("[General] Subscribe Contract Info (no
#: authentication)", ``public.$contract_code.contract_info`` on linear-swap-notification, and
#: the same topic on swap-notification and, per coin, ``public.$symbol.contract_info`` on
#: notification): "The websocket subscription of contract info event is pushed every 60
#: seconds, and the event is "snapshot"", an ``init`` push on subscribe and an ``update`` on
#: any change; the push is ``{"op":"notify","topic":"public.BTC.contract_info","ts":..,
#: "event":"snapshot","data":[{"symbol":..,"contract_code":..,"contract_size":..,..}]}``
#: (recorded 2020-06/07 in tardis-node test/mappers.test.ts, events init and snapshot). The
#: pushes are timed by HTX, not by trading: a quiet market still gets one a minute.
CONTRACT_INFO_SUFFIX = ".contract_info"
LIVENESS_CONTRACTS = {"linear": "BTC-USDT", "coin": "BTC-USD"}
#: Seconds without a liquidation or a ``contract_info`` push before a connection counts as
#: silent: three of HTX's 60 s snapshots missed.
DATA_TIMEOUT = 180.0


def subscribe(targets: Sequence[str] = ("*",), liveness: str | None = None) -> tuple[str, ...]:
    """One ``sub`` per target: ``*`` (every contract) or a coin (``BTC``); then, with
    ``liveness`` (a contract code, or a coin on the delivery endpoint), its contract info."""
    topics = [f"public.{target}{TOPIC_SUFFIX}" for target in targets]
    if liveness is not None:
        topics.append(f"public.{liveness}{CONTRACT_INFO_SUFFIX}")
    return tuple(compact_json({"op": "sub", "cid": "1", "topic": topic}) for topic in topics)


def liveness_coin(coins: Sequence[str]) -> str | None:
    """The delivery endpoint's liveness coin: BTC if subscribed, else the first coin."""
    if "BTC" in coins:
        return "BTC"
    return coins[0] if coins else None


def contract_info_push(frame: bytes | str) -> bool:
    """A ``contract_info`` push (``op: notify``; its ``sub`` ack is not one), gzipped."""
    text = gunzip(EXCHANGE, frame) if isinstance(frame, bytes) else frame
    message = containing(text, CONTRACT_INFO_SUFFIX)
    if message is None or message.get("op") != "notify":
        return False
    topic = message.get("topic")
    return isinstance(topic, str) and topic.endswith(CONTRACT_INFO_SUFFIX)


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


#: HTX's reply codes on its notification endpoints (HTX's futures API docs, "Order Push
#: Address", appendix "Response code (Err-Code)", www.htx.com/en-us/opend/newApiPages; the
#: same table on the USDT-M and coin-M pages, as mirrored in rosssaunders/coincise @ a00ae58,
#: docs/htx/usdtm/public_websocket_api.md): 0 success; 2001-2003, 2005, 2007, 2013 are about
#: authentication, which we never ask; 2010 "Topic error.", 2011 "Contract doesn't exist.",
#: 2012 "Topic not subscribed.", 2020/2021 margin parameters and 2040 "Missing required
#: parameter." name something wrong in the request: asking again gets the same answer. These
#: two are limits, and pass later on a new connection:
#: 2004 "Number of visits exceeds limit." and 2030 "Exceeds connection limit of single user.".
RETRYABLE_REFUSALS = frozenset({"2004", "2030"})
#: 2014 "Repeated subscription.": the topic is subscribed already, nothing is refused.
REPEATED_SUBSCRIPTION = "2014"
#: ``{"op":"error","ts":..}``: "Server will return error but not disconnect if Client provides
#: illegal Op or there is any internal error" (the same docs, "Server return error code but
#: remain connection"). It carries no code and names no request; ours (``sub``, ``pong``) are
#: in HTX's op list, so it is HTX's internal error, and may have cost the subscribe: asked
#: again on a new connection (the gap between them is repaired from REST, htx/repair.py).
OP_ERROR = "error"


def _reply(frame: bytes | str) -> dict[str, object] | None:
    """An HTX frame as a JSON object (gunzipped if binary); None if it is not one."""
    return json_object(gunzip(EXCHANGE, frame) if isinstance(frame, bytes) else frame)


def refusal(frame: bytes | str) -> str | None:
    """HTX's reply with a non-zero ``err-code`` (``{"op":"sub",..,"err-code":2010,
    "err-msg":"Topic error."}``; acks carry ``"err-code":0``), or its ``{"op":"error"}``,
    gzipped like every HTX frame. ``Repeated subscription`` (2014) refuses nothing."""
    message = _reply(frame)
    if message is None:
        return None
    if message.get("op") == OP_ERROR and "err-code" not in message:
        return "op error: HTX's internal error, or a request it does not take (no code)"
    code = message.get("err-code")
    if code in (None, 0, "0") or as_text(code) == REPEATED_SUBSCRIPTION:
        return None
    return f"{as_text(code)}: {as_text(message.get('err-msg'))}"


def retry_refused(frame: bytes | str) -> bool:
    """Whether HTX's refusal ``frame`` may pass when asked again on a new connection: its
    limits (2004, 2030) and its ``op: error``; any other code names a wrong request."""
    message = _reply(frame)
    if message is None:
        return False
    if message.get("op") == OP_ERROR and "err-code" not in message:
        return True
    return as_text(message.get("err-code")) in RETRYABLE_REFUSALS


def topics(message: str) -> tuple[str, ...] | None:
    """The liquidation topic of one of our ``sub`` messages (None: another message, the
    liveness ``contract_info`` sub among them)."""
    request = json_object(message)
    if request is None or request.get("op") != "sub":
        return None
    topic = request.get("topic")
    return (topic,) if isinstance(topic, str) and topic.endswith(TOPIC_SUFFIX) else None


def tagged(topics: tuple[str, ...], tag: str) -> str:
    """A ``sub`` of one topic whose ``cid`` HTX echoes in its answer (one topic a message)."""
    if len(topics) != 1:
        raise ValueError(f"HTX subscribes one topic a message, not {topics!r}")
    return compact_json({"op": "sub", "cid": tag, "topic": topics[0]})


def reply(frame: bytes | str) -> Reply | None:
    """HTX's answer to a liquidation ``sub``: ``{"op":"sub","cid":..,"topic":..,
    "err-code":0}``, or with a refusing code (:func:`refusal`); 2014 "Repeated
    subscription" says the topic is live."""
    message = _reply(frame)
    if message is None or message.get("op") != "sub":
        return None
    topic = message.get("topic")
    if not isinstance(topic, str) or not topic.endswith(TOPIC_SUFFIX):
        return None
    code = as_text(message.get("err-code"))
    cid = message.get("cid")
    return Reply(
        refused=code not in ("0", REPEATED_SUBSCRIPTION),
        tag=str(cid) if cid else None,
        topic=topic,
        live=code == REPEATED_SUBSCRIPTION,
    )


#: The delivery endpoint subscribes one coin a ``sub`` from the catalog: a coin refused alone
#: (2011, its contracts delisted) is given up and asked again later, and one listed since the
#: connection opened is asked for on it (``Connection.follow_catalog``).
BATCHING = Batching(topics=topics, message=tagged, reply=reply)


def connections(instruments: Catalog) -> list[Connection]:
    # HTX pings every few seconds and expects each answered; its pings feed the watchdog.
    def per_coin() -> tuple[str, ...]:
        coins = coin_margined_coins(instruments)
        return subscribe(coins, liveness_coin(coins))

    def swaps(kind: str) -> tuple[str, ...]:
        return subscribe(liveness=LIVENESS_CONTRACTS[kind])

    return [
        Connection(
            name=f"{EXCHANGE}_{kind}",
            exchange=EXCHANGE,
            url=url,
            subscribe=per_coin if kind == "futures" else swaps(kind),
            answer=answer,
            refusal=refusal,
            retry_refused=retry_refused,
            liveness=contract_info_push,
            data_timeout=DATA_TIMEOUT,
            silence_timeout=30.0,
            # HTX: "40 subscriptions at most can be sent in one second" on one connection.
            subscribe_pause=0.05 if kind == "futures" else 0.0,
            batching=BATCHING if kind == "futures" else None,
        )
        for kind, url in URLS.items()
    ]
