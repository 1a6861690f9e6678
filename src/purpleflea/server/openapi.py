"""The OpenAPI 3.1 document served at ``/openapi.json``: every route the app serves.

The routes are written here (a test walks the app's routes and fails on any missing one); the
bodies' schemas come from :mod:`purpleflea.server.openapi_schemas`. Each operation lists every
status its handler really answers, so a fuzzer (schemathesis runs in the test suite) can hold
the server to it.
"""

from __future__ import annotations

from typing import Any

from purpleflea.engine.heatmap import MAX_BUCKETS
from purpleflea.model import MARKET_PATTERN
from purpleflea.server.coverage import coverage_paths
from purpleflea.server.openapi_schemas import (
    SSE_EVENT,
    WEBSOCKET,
    Schema,
    epoch_ms,
    error,
    integer,
    json_content,
    ref,
    schemas,
)
from purpleflea.server.webhook_routes import webhook_paths
from purpleflea.venues.venue import COVERAGES, PRICE_KINDS

#: The key may come in any of these; an operation that needs one lists all three.
_SECURED: list[dict[str, list[str]]] = [{"bearer": []}, {"apiKeyHeader": []}, {"apiKeyQuery": []}]
#: Without a key is allowed too (registration).
_OPTIONAL_KEY: list[dict[str, list[str]]] = [{}, *_SECURED]


def _param(name: str, schema: Schema, description: str, *, inside: str = "query") -> Schema:
    return {
        "name": name,
        "in": inside,
        "required": inside == "path",
        "schema": schema,
        "description": description,
    }


def _list(items: Schema | None = None) -> Schema:
    """A list parameter: by default values that are not blank, of at most 64 characters each,
    at most 500 of them (what :func:`purpleflea.server.http.strings` accepts)."""
    return {
        "type": "array",
        "items": items or {"type": "string", "minLength": 1, "maxLength": 64, "pattern": r"\S"},
        "maxItems": 500,
    }


#: A market name (BASE-PERP, BASE-YYYYMMDD; any case): any other is answered 400.
_MARKET: Schema = {"type": "string", "minLength": 1, "maxLength": 64, "pattern": MARKET_PATTERN}
_MARKETS = _list(_MARKET)
_SIDES = _list({"type": "string", "enum": ["long", "short"]})
_COVERAGES = _list({"type": "string", "enum": list(COVERAGES)})
_MIN_USD = _param("min_usd", {"type": "number", "minimum": 0}, "Minimum notional in USD.")
_WINDOW = [
    _param(
        "start",
        epoch_ms(0),
        "Event time >= start (ms since epoch). A value from 1e9 to 1e11 looks like seconds "
        "(as ms it is 1970-1973) and is answered 400 with the ms to send.",
    ),
    _param(
        "end",
        epoch_ms(1),
        "Event time < end (ms since epoch). With start, end must be greater than start: an "
        "empty or inverted window is answered 400, as is a value that looks like seconds.",
    ),
]


def _exchanges(exchanges: tuple[str, ...]) -> Schema:
    return _list({"type": "string", "enum": list(exchanges)})


def _filters(exchanges: tuple[str, ...]) -> list[Schema]:
    return [
        _param("market", _MARKETS, "Markets, e.g. BTC-PERP (repeat or comma-separate)."),
        _param(
            "exchange",
            _exchanges(exchanges),
            "Exchange ids (repeat or comma-separate; GET /v1/exchanges lists them), in any case: "
            "capitals read as the id.",
        ),
        _param("side", _SIDES, "Liquidated position side (any case: LONG is long)."),
        _param(
            "coverage",
            _COVERAGES,
            "How complete the event's venue feed is: complete, snapshot (throttled) or sampled "
            "(any case).",
        ),
        _MIN_USD,
        *_WINDOW,
    ]


def _limit(what: str) -> Schema:
    return _param(
        "limit", {"type": "integer", "minimum": 1, "maximum": 1000}, f"{what} (default 100)."
    )


def _choice(name: str, options: list[str], description: str) -> Schema:
    return _param(name, {"type": "string", "enum": options}, description)


def _ok(schema: Schema, status: str = "200", description: str = "OK") -> dict[str, Schema]:
    return {status: {"description": description, "content": json_content(schema)}}


_STORE_UNAVAILABLE = (
    "store_unavailable: the store's database cannot be reached now (a scale-out's PostgreSQL "
    "down or restarting); retry after Retry-After seconds."
)


def _operation(
    operation_id: str,
    summary: str,
    responses: dict[str, Schema],
    *,
    errors: tuple[int, ...] = (),
    parameters: list[Schema] | None = None,
    security: list[dict[str, list[str]]] | None = _SECURED,
    description: str | None = None,
) -> Schema:
    """One operation; every one may answer 414 and 431 (a query or a head over the server's
    bounds, refused before routing: server/request_bounds.py, serving.py); a secured one also
    answers 401 (no or bad key), 429 (rate limit) and 503 (the store cannot be reached: a key
    cannot be checked, history cannot be read)."""
    bounds = {*errors, 414, 431}
    codes = sorted({*bounds, 401, 429} if security is _SECURED else bounds)
    answers = {str(code): error(code) for code in codes}
    if security is _SECURED and 503 not in errors:
        answers["503"] = error(503, _STORE_UNAVAILABLE)
    operation: Schema = {
        "operationId": operation_id,
        "summary": summary,
        "responses": {**responses, **answers},
    }
    if description:
        operation["description"] = description
    if parameters:
        operation["parameters"] = parameters
    # Public operations say so: an operation without `security` inherits none (no global one).
    if security is not None:
        operation["security"] = security
    return operation


_STREAM_PROTOCOL = (
    "A WebSocket (RFC 6455): connect with `Upgrade: websocket` and the key in "
    "`Authorization: Bearer`, `X-API-Key` or `?api_key=`. A plain HTTP GET is checked like any "
    "request (401, 429) and then answered 426. The protocol (JSON text frames) is in "
    "`x-websocket`; OpenAPI has no words for the frames, so HTTP fuzzers reach only those "
    "answers, and the stream itself is tested by the test suite and the SDK."
)


#: An ``order=ts`` history page's cursor: its last event's ts and seq.
_TIME_CURSOR: Schema = {"type": "string", "pattern": "^[0-9]{1,18}_[0-9]{1,18}$"}


def _data_paths(exchanges: tuple[str, ...]) -> dict[str, Schema]:
    return {
        "/v1/liquidations": {
            "get": _operation(
                "listLiquidations",
                "Liquidation history, newest first, cursor-paged.",
                _ok(ref("Page")),
                errors=(400,),
                description="order=seq (the default): the last stored first (seq descending), "
                "which differs from time order when a late feed or older history imported "
                "after newer was stored; order=ts: the latest event time first (ts, then seq, "
                "descending), what 'the newest events' means. Each order pages with its own "
                "next_cursor: an integer (seq), or '<ts>_<seq>' (ts).",
                parameters=[
                    *_filters(exchanges),
                    _choice("order", ["seq", "ts"], "Newest first by seq (default) or by ts."),
                    _param(
                        "cursor",
                        {"anyOf": [integer(1), _TIME_CURSOR]},
                        "next_cursor of the previous page (of the same order).",
                    ),
                    _limit("Page size"),
                ],
            )
        },
        "/v1/liquidations/aggregate": {
            "get": _operation(
                "aggregateLiquidations",
                "Counts and notional per interval and group.",
                _ok(ref("Aggregate")),
                errors=(400,),
                description="Without start, the window is the last 6 h (interval=1m), 7 days "
                "(1h) or 365 days (1d; 7 days with min_usd) before end (default now), its start "
                "on the hour (1m: on the minute). An aggregate that reads every event (min_usd) "
                "or every minute (interval=1m) spans at most 7 days: a longer window is refused "
                "(400). Buckets are UTC intervals (a day from 00:00 UTC) and count only events in "
                "[start, end): with start or end inside an interval, its bucket (start_ms on the "
                "interval's edge) holds that part of it only.",
                parameters=[
                    *_filters(exchanges),
                    _choice("interval", ["1m", "1h", "1d"], "Bucket width (default 1h)."),
                    _choice(
                        "group_by", ["market", "exchange", "side"], "Grouping (default market)."
                    ),
                    _choice(
                        "estimate",
                        ["true", "false"],
                        "true (default): est_count and est_size_usd add what throttled feeds "
                        "hid. false: the measure alone, est_* repeating it and est_calibration "
                        "none; for a caller that reads only count and size_usd (the open "
                        "hour's estimate is most of an aggregate's cost).",
                    ),
                ],
            )
        },
        "/v1/markets": {
            "get": _operation(
                "listMarkets",
                "Markets seen, with 24 h liquidation totals (a market with no event for 7 "
                "days and no listing is dropped: an expired future, a delisted coin).",
                _ok(ref("Markets")),
                errors=(400,),  # it takes no parameter: ?market= is refused, not ignored
            )
        },
        "/v1/cascades": {
            "get": _operation(
                "listCascades",
                "Cascade alerts: the latest state of each cascade, newest first.",
                _ok(ref("Cascades")),
                errors=(400,),
                parameters=[
                    _choice("status", ["active", "past", "all"], "Which cascades (default all)."),
                    _param("market", _MARKETS, "Markets."),
                    _limit("At most this many"),
                ],
            )
        },
        "/v1/heatmap/{market}": {
            "get": _operation(
                "getHeatmap",
                "Liquidation levels (notional per price bucket) of a market: estimated, or "
                "measured from sampled positions.",
                _ok({"oneOf": [ref("Heatmap"), ref("MeasuredMap")]}),
                errors=(400, 404),
                description="source=estimated (the default) is the model fed by open interest; "
                "source=measured sums sampled accounts' positions by their own liquidation "
                "prices, with coverage = sampled notional / both sides of open interest. 404 "
                "while the market has no heatmap of that source yet (estimated: it needs "
                "open-interest snapshots; measured: position sampling must be on and have "
                "polled the market). low, high and bucket default to a range around the "
                f"mark; low must be below high, and at most {MAX_BUCKETS} buckets fit between "
                "them.",
                parameters=[
                    _param(
                        "market",
                        _MARKET,
                        "The market, e.g. BTC-PERP (any case).",
                        inside="path",
                    )
                    | {"example": "BTC-PERP"},
                    _param("low", {"type": "number", "exclusiveMinimum": 0}, "Lowest price."),
                    _param("high", {"type": "number", "exclusiveMinimum": 0}, "Highest price."),
                    _param(
                        "bucket", {"type": "number", "exclusiveMinimum": 0}, "Bucket width, USD."
                    ),
                    _choice(
                        "source",
                        ["estimated", "measured"],
                        "estimated (default, every market) or measured (sampled positions).",
                    ),
                ],
            )
        },
    }


def _key_paths() -> dict[str, Schema]:
    created = _ok(ref("NewKey"), "201", "Created: the key is shown once.")
    created["201"]["links"] = {
        "revokeKey": {
            "operationId": "revokeKey",
            "parameters": {"key_id": "$response.body#/key_id"},
            "description": "The new key's id revokes it.",
        }
    }
    body = {
        "type": "object",
        "properties": {
            "account": {
                "type": "string",
                "maxLength": 200,
                "pattern": r"\S",
                "description": "Without a key: the NEW account to create (an existing one is "
                "answered 409 account_exists). With a key: leave it out; naming another "
                "account than the key's is answered 403 forbidden. Printable characters only "
                "(a control or invisible format character is answered 400).",
            },
            "name": {
                "type": "string",
                "maxLength": 200,
                "description": "A label for the key; printable characters only, as account.",
            },
        },
    }
    return {
        "/v1/keys": {
            "post": _operation(
                "createKey",
                "Register a new account and its first key; with a key, add a key to its account.",
                created,
                errors=(400, 401, 403, 409, 429),
                security=_OPTIONAL_KEY,
                description="Without a key this creates a new account (the body's account): "
                "409 account_exists when the name is taken, 429 past the registrations per "
                "minute of an address, 403 registration_closed when the server does not take "
                "registrations. With a key it mints another key in the caller's own account: "
                "403 key_limit_reached once the account holds the per-account cap of active "
                "keys (docs/security.md).",
            )
            | {"requestBody": {"content": json_content(body)}},
            "get": _operation(
                "listKeys", "The keys of the caller's account.", _ok(ref("Keys")), errors=(400,)
            ),
        },
        "/v1/keys/{key_id}": {
            "delete": _operation(
                "revokeKey",
                "Revoke a key of the caller's account; its streams close.",
                _ok(ref("Revoked")),
                errors=(400, 404),
                parameters=[
                    _param(
                        "key_id", {"type": "string", "minLength": 1}, "The key's id.", inside="path"
                    )
                ],
            )
        },
    }


def _stream_paths(exchanges: tuple[str, ...]) -> dict[str, Schema]:
    return {
        "/v1/stream": {
            "get": _operation(
                "stream",
                "Live events over WebSocket, with server-side filters and resume.",
                {"101": {"description": "Switching Protocols: the stream (see x-websocket)."}},
                errors=(426,),
                description=_STREAM_PROTOCOL,
            )
            | {"x-websocket": WEBSOCKET}
        },
        "/v1/stream/sse": {
            "get": _operation(
                "streamSse",
                "Server-Sent Events stream with server-side filters and resume.",
                {
                    "200": {
                        "description": "The event stream: a heartbeat first, then events.",
                        "content": {"text/event-stream": {"schema": SSE_EVENT}},
                    }
                },
                errors=(400, 503),
                description="429 too_many_streams when the account holds its maximum of open "
                "streams, 429 rate_limited past its stream opens per minute (Retry-After in "
                "both); 503 while the server shuts down. Unknown query parameters are refused "
                "(400). A client that falls more than the stream buffer behind is cut with a "
                "final error event, slow_consumer (docs/security.md).",
                parameters=[
                    _param("markets", _MARKETS, "Markets (comma-separated or repeated)."),
                    _param("exchanges", _exchanges(exchanges), "Exchange ids, in any case."),
                    _param("sides", _SIDES, "Liquidated position side."),
                    _param("coverages", _COVERAGES, "Coverage classes of the events' venues."),
                    _MIN_USD,
                    _param(
                        "channels",
                        _list({"type": "string", "enum": ["liquidations", "cascades"]}),
                        "liquidations (default) and/or cascades.",
                    ),
                    _param(
                        "since_seq",
                        {"type": "integer", "minimum": 0, "maximum": 2**63 - 1},
                        "Resume after this seq (or send Last-Event-ID); above the last seq is "
                        "answered 400 naming it.",
                    ),
                    _param(
                        "Last-Event-ID",
                        {"type": "string", "pattern": "^[0-9]{0,18}$"},
                        "The browser's resume point (since_seq wins when both are sent; empty "
                        "is none).",
                        inside="header",
                    ),
                ],
            )
        },
    }


def _operations_paths() -> dict[str, Schema]:
    text = {"text/plain": {"schema": {"type": "string"}}}
    return {
        "/v1/health": {
            "get": _operation(
                "health", "Liveness and ingest state.", _ok(ref("Health")), security=None
            )
        },
        "/v1/exchanges": {
            "get": _operation(
                "exchanges",
                "The exchange ids filters take, with display name, coverage (complete: every "
                "liquidation; snapshot: a throttled sample; sampled: only watched accounts) and "
                "what their events' price is.",
                _ok(
                    {
                        "type": "object",
                        "properties": {
                            "exchanges": {
                                "type": "array",
                                "items": {
                                    "type": "object",
                                    "properties": {
                                        "id": {"type": "string"},
                                        "name": {"type": "string"},
                                        "coverage": {
                                            "type": ["string", "null"],
                                            "enum": ["complete", "snapshot", "sampled", None],
                                        },
                                        "price": {
                                            "type": ["string", "null"],
                                            "enum": [*PRICE_KINDS, None],
                                        },
                                    },
                                    "required": ["id", "name", "coverage", "price"],
                                },
                            }
                        },
                        "required": ["exchanges"],
                    }
                ),
                security=None,
                description=(
                    "price says what an event's price is on that exchange: fill (what the "
                    "liquidation traded at), bankruptcy (the position's bankruptcy price, away "
                    "from the market), order (the liquidation order's own price, not its fill) "
                    "or liquidation (what the venue calls its liquidation price, not said to be "
                    "a fill). Only fill prices are the market's."
                ),
            )
        },
        "/v1/ready": {
            "get": _operation(
                "ready",
                "Readiness: 200 while serving, 503 otherwise (for load balancers).",
                {
                    **_ok(ref("Readiness"), description="Serving."),
                    "503": {
                        "description": "Not serving; reasons say why.",
                        "content": json_content(ref("Readiness")),
                    },
                },
                security=None,
            )
        },
        "/v1/metrics": {
            "get": _operation(
                "metrics",
                "Prometheus metrics.",
                {"200": {"description": "Prometheus text format.", "content": text}},
                security=None,
            )
        },
        "/openapi.json": {
            "get": _operation(
                "openapi",
                "This document.",
                _ok({"type": "object"}),
                security=None,
            )
        },
        "/": {
            "get": _operation(
                "dashboard",
                "The web dashboard.",
                {
                    "200": {
                        "description": "The page.",
                        "content": {"text/html": {"schema": {"type": "string"}}},
                    }
                },
                security=None,
            )
        },
        "/favicon.ico": {
            "get": _operation(
                "favicon",
                "The dashboard's icon (an SVG, for tools that ask for /favicon.ico).",
                {
                    "200": {
                        "description": "The icon.",
                        "content": {"image/svg+xml": {"schema": {"type": "string"}}},
                    }
                },
                security=None,
            )
        },
        "/static/{path}": {
            "get": _operation(
                "dashboardAsset",
                "The dashboard's scripts and styles.",
                {"200": {"description": "The file.", "content": {"*/*": {}}}},
                errors=(404,),
                security=None,
                parameters=[
                    _param("path", {"type": "string", "minLength": 1}, "File name.", inside="path")
                    | {"example": "style.css"}
                ],
            )
        },
    }


def document(version: str, *, exchanges: tuple[str, ...]) -> dict[str, Any]:
    """The whole document for server ``version``; ``exchanges`` are the ids filters take."""
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Purple Flea Liquidation Pipeline",
            "version": version,
            "description": "Forced liquidations across crypto perpetual markets, normalized. "
            "Every error is a JSON Error body. Streams: WebSocket /v1/stream and SSE "
            "/v1/stream/sse.",
        },
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "apiKeyHeader": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
                "apiKeyQuery": {"type": "apiKey", "in": "query", "name": "api_key"},
            },
            "schemas": schemas(),
        },
        "paths": {
            **_data_paths(exchanges),
            **_key_paths(),
            **_stream_paths(exchanges),
            **_operations_paths(),
            **webhook_paths(exchanges),
            **coverage_paths(exchanges),
        },
    }
