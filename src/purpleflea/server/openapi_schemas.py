"""The schemas and shared responses of the OpenAPI document (:mod:`purpleflea.server.openapi`).

The bodies the API sends are derived from the structs that encode them (one definition each);
what the routes assemble by hand (the envelopes around them, health, readiness) is written here.
"""

from __future__ import annotations

from typing import Any

import msgspec

from purpleflea.clock import SECONDS_LIKE
from purpleflea.model import CascadeAlert, Heatmap, Liquidation
from purpleflea.positions import MeasuredMap
from purpleflea.server.http import MAX_INTEGER
from purpleflea.server.keys import KeyInfo
from purpleflea.server.streaming import CLOSE_CODES
from purpleflea.store.base import Bucket
from purpleflea.venues import registry

Schema = dict[str, Any]


def ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def integer(minimum: int) -> Schema:
    """An integer query parameter from ``minimum`` to what :func:`purpleflea.server.http.integer`
    takes."""
    return {"type": "integer", "minimum": minimum, "maximum": MAX_INTEGER}


def epoch_ms(minimum: int) -> Schema:
    """A time in ms since the epoch (:func:`purpleflea.server.http.epoch_ms`): a value that
    looks like seconds is answered 400."""
    seconds = {"minimum": SECONDS_LIKE.start, "exclusiveMaximum": SECONDS_LIKE.stop}
    return {**integer(minimum), "not": seconds}


def _struct_schemas() -> dict[str, Schema]:
    """JSON Schemas of the structs the API encodes. Every field is always sent (defaults
    included: none of them omits defaults), so responses require them all."""
    _, components = msgspec.json.schema_components(
        [Liquidation, CascadeAlert, Heatmap, MeasuredMap, Bucket, KeyInfo],
        ref_template="#/components/schemas/{name}",
    )
    for name, schema in components.items():
        schema["required"] = list(schema["properties"])
        # The docstring's first paragraph; the rest is about the Python class.
        schema["description"] = schema.get("description", name).split("\n\n")[0]
    return components


def _object(properties: dict[str, Schema], *, required: list[str] | None = None) -> Schema:
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties) if required is None else required,
    }


_STRING = {"type": "string"}
_INTEGER = {"type": "integer"}
_NUMBER = {"type": "number"}
_COUNTS = {"type": "object", "additionalProperties": _INTEGER}

_ERROR = _object(
    {
        "error": _object(
            {
                "code": {
                    "type": "string",
                    "description": "Stable, machine-readable: bad_request, missing_api_key, "
                    "invalid_api_key, not_found, rate_limited, ...",
                },
                "message": {"type": "string", "description": "What was wrong, for people."},
            }
        )
    }
)

_MARKET = _object(
    {
        "market": _STRING,
        "last_price": {"type": ["number", "null"]},
        "last_price_ts": {"type": ["integer", "null"]},
        "last_ts": {"type": ["integer", "null"]},
        "exchanges": {"type": "array", "items": _STRING},
        "events_24h": _INTEGER,
        "usd_24h": _NUMBER,
        "long_usd_24h": _NUMBER,
        "short_usd_24h": _NUMBER,
    }
)

_HEALTH = {
    **_object(
        {
            "status": {
                "type": "string",
                "enum": ["ok", "degraded"],
                "description": "ok while data flows; degraded names why in reasons.",
            },
            "reasons": {"type": "array", "items": _STRING},
            "version": _STRING,
            "role": {"type": "string", "enum": ["all", "ingest", "api"]},
            "source": _STRING,
            "uptime_s": _NUMBER,
            "last_seq": _INTEGER,
            "stream_clients": _INTEGER,
            "streams_closed": _COUNTS,
            "pipeline": _COUNTS,
            "ingest": {"type": "array", "items": {"type": "object"}},
            "bus": _COUNTS,
            "stream_workers": {
                "type": "object",
                "description": "With --stream-workers N > 1: workers still taking streams "
                "(running, of N) and the open streams each one writes.",
                "properties": {
                    "running": _INTEGER,
                    "streams": {"type": "array", "items": _INTEGER},
                },
                "required": ["running", "streams"],
            },
            "store": {
                "type": "object",
                "description": "writable: whether the last write succeeded; failing: each "
                "writer whose writes fail, for how long and with which error.",
                "properties": {
                    "writable": {"type": "boolean"},
                    "failing": {"type": "object"},
                },
                "required": ["writable", "failing"],
            },
            "ingest_buffer": {
                "type": "object",
                "description": "Events waiting for the store, and the cap beyond which new "
                "ones are dropped and counted (dropped_buffer_full).",
                "properties": {"buffered": _INTEGER, "limit": _INTEGER},
                "required": ["buffered", "limit"],
            },
            "source_status": {
                "type": "object",
                "description": "With --source sim: what the simulator does (starting, "
                "warming_up with its blocks done of all, running since started_ms), and "
                "message, what a user waiting for a first liquidation is told (empty once "
                "the tracker stored one).",
                "properties": {
                    "phase": {"type": "string", "enum": ["starting", "warming_up", "running"]},
                    "markets": _INTEGER,
                    "warm_up": {
                        "type": "object",
                        "properties": {"blocks_done": _INTEGER, "blocks": _INTEGER},
                        "required": ["blocks_done", "blocks"],
                    },
                    "started_ms": _INTEGER,
                    "message": _STRING,
                },
                "required": ["phase", "markets", "message"],
            },
        },
        required=["status", "version", "role", "source", "last_seq"],
    ),
}

_READINESS = _object(
    {
        "ready": {"type": "boolean", "description": "true while serving (answered 200)."},
        "reasons": {
            "type": "array",
            "items": _STRING,
            "description": "Why not ready (answered 503); empty when ready.",
        },
    },
    required=["ready", "reasons"],
)

_NEW_KEY = _object(
    {
        "key": {"type": "string", "description": "The key itself: shown this once only."},
        "key_id": _STRING,
        "account": _STRING,
        "name": _STRING,
        "created_at": _INTEGER,
        "note": _STRING,
    }
)


def schemas() -> dict[str, Schema]:
    """Every named schema of the document."""
    return {
        **_struct_schemas(),
        "Error": _ERROR,
        "Page": _object(
            {
                "events": {"type": "array", "items": ref("Liquidation")},
                "next_cursor": {
                    "type": ["integer", "string", "null"],
                    "description": "cursor of the next (older) page; null on the last page. "
                    "An integer (order=seq) or '<ts>_<seq>' (order=ts).",
                },
            }
        ),
        "Aggregate": _object(
            {
                "interval": {"type": "string", "enum": ["1m", "1h", "1d"]},
                "group_by": {"type": "string", "enum": ["market", "exchange", "side"]},
                "buckets": {"type": "array", "items": ref("Bucket")},
            }
        ),
        "Market": _MARKET,
        "Markets": _object(
            {
                "markets": {"type": "array", "items": ref("Market")},
                # Where GET /v1/heatmap/{market}?source=measured answers (sampled markets).
                "measured_heatmaps": {"type": "array", "items": _STRING},
            }
        ),
        "Cascades": _object({"cascades": {"type": "array", "items": ref("CascadeAlert")}}),
        "NewKey": _NEW_KEY,
        "Keys": _object({"keys": {"type": "array", "items": ref("KeyInfo")}}),
        "Revoked": _object(
            {
                "revoked": _STRING,
                "already_revoked": {
                    "type": "boolean",
                    "description": "The key was revoked before this request (a retried "
                    "revoke): the answer is the same success, with the first revocation's time.",
                },
                "revoked_at": _INTEGER,
                "streams_closed": _INTEGER,
            }
        ),
        "Health": _HEALTH,
        "Readiness": _READINESS,
    }


def json_content(schema: Schema) -> Schema:
    return {"application/json": {"schema": schema}}


_ERROR_TEXT = {
    400: "A parameter or the body is wrong; the message names it.",
    401: "Missing or invalid API key.",
    403: "Refused: registration is closed on this server, or the account already holds its "
    "maximum of active keys.",
    404: "Not found; the message says what.",
    409: "Conflict: that account already exists (registering without a key always creates a "
    "new account; ask its owner, or the operator, for a key), or the account is at its key cap.",
    414: "The query is over the server's bound (48 KiB or 600 parameters), refused before "
    "it is read: no filter of this API needs that many.",
    426: "A plain HTTP request to a WebSocket endpoint: upgrade to WebSocket.",
    431: "The request head is over 100 lines, refused before it is parsed (the connection "
    "is closed).",
    429: "Rate limited: retry after Retry-After seconds.",
    503: "Not serving (see the body's reasons).",
}

_HEADERS: dict[int, dict[str, Schema]] = {
    401: {
        "WWW-Authenticate": {
            "description": "The scheme to use: Bearer.",
            "required": True,
            "schema": {"type": "string"},
        }
    },
    426: {
        "Upgrade": {
            "description": "The protocol to switch to: websocket.",
            "required": True,
            "schema": {"type": "string", "enum": ["websocket"]},
        }
    },
    429: {
        "Retry-After": {
            "description": "Seconds until a retry can succeed.",
            "required": True,
            "schema": {"type": "integer", "minimum": 1},
        }
    },
}


def error(status: int, description: str | None = None) -> Schema:
    """The response for an error status: the Error body, and the headers that come with it."""
    response: Schema = {
        "description": description or _ERROR_TEXT[status],
        "content": json_content(ref("Error")),
    }
    if status in _HEADERS:
        response["headers"] = _HEADERS[status]
    return response


#: The WebSocket protocol, for the document's `x-websocket` (OpenAPI has no words for it).
WEBSOCKET = {
    "description": "JSON text frames. The client subscribes first (every field optional; "
    "since_seq resumes after that seq with no gap and no duplicate), then may ping; the server "
    "sends subscribed, a heartbeat, then events (or batches, with batch: true), and a "
    "heartbeat whenever it sent nothing for the heartbeat interval (its seq: resume from it). "
    "A stream ends with an error frame naming the reason, then a close with that reason's code.",
    "client": {
        "subscribe": {
            "op": "subscribe",
            "channels": ["liquidations", "cascades"],
            "markets": ["BTC-PERP"],
            "exchanges": [registry.EXCHANGE_IDS[0]],
            "sides": ["long"],
            "coverages": ["complete", "snapshot"],
            "min_usd": 100000,
            "since_seq": 123,
            "batch": True,
        },
        "ping": {"op": "ping"},
    },
    "server": {
        "subscribed": {"type": "subscribed", "seq": 0, "filters": {}, "batch": True},
        "liquidation": {"type": "liquidation", "data": ref("Liquidation")},
        "cascade": {"type": "cascade", "data": ref("CascadeAlert")},
        "batch": {"type": "batch", "items": ["liquidation or cascade frames, in seq order"]},
        "heartbeat": {"type": "heartbeat", "seq": 0, "ts": 0},
        "pong": {"type": "pong"},
        "error": {"type": "error", "code": "slow_consumer", "message": "..."},
    },
    "close_codes": CLOSE_CODES,
}

#: One server-sent event as a client parses it (`data` is a JSON frame as on the WebSocket).
SSE_EVENT = {
    "type": "object",
    "description": "One server-sent event: `data` is a JSON frame as on the WebSocket.",
    "properties": {
        "event": {"type": "string", "enum": ["liquidation", "cascade", "heartbeat", "error"]},
        "data": {"type": "string"},
        "id": {"type": "string", "pattern": "^[0-9]+$"},
        "retry": {"type": "integer"},
    },
    "required": ["event", "data"],
}
