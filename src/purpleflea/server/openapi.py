"""The OpenAPI document served at ``/openapi.json`` (checked by tests). The routes are written
here; the event schema is derived from the model."""

from __future__ import annotations

from typing import Any

import msgspec

from purpleflea.model import Liquidation

_LIST = {"type": "array", "items": {"type": "string"}}


def _param(name: str, schema: dict[str, Any], description: str, *, inside: str = "query") -> Any:
    return {
        "name": name,
        "in": inside,
        "required": inside == "path",
        "schema": schema,
        "description": description,
    }


_FILTERS = [
    _param("market", _LIST, "Markets, e.g. BTC-PERP (repeat or comma-separate)."),
    _param("exchange", _LIST, "Exchange ids, e.g. binance_usdm, bybit."),
    _param(
        "side",
        {"type": "array", "items": {"type": "string", "enum": ["long", "short"]}},
        "Liquidated position side.",
    ),
    _param("min_usd", {"type": "number", "minimum": 0}, "Minimum notional in USD."),
    _param("start", {"type": "integer", "minimum": 0}, "Event time >= start (ms since epoch)."),
    _param("end", {"type": "integer", "minimum": 0}, "Event time < end (ms since epoch)."),
]


def _liquidation_schema() -> dict[str, Any]:
    """The event schema, derived from :class:`~purpleflea.model.Liquidation` (one definition)."""
    _, components = msgspec.json.schema_components(
        [Liquidation], ref_template="#/components/schemas/{name}"
    )
    schema: dict[str, Any] = components["Liquidation"]
    # Every field is always sent (defaults included), so responses require them all.
    schema["required"] = list(Liquidation.__struct_fields__)
    return schema


_LIQUIDATION = _liquidation_schema()

_ERROR = {
    "type": "object",
    "properties": {
        "error": {
            "type": "object",
            "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
        }
    },
}


def _responses(schema: dict[str, Any], *, authed: bool = True) -> dict[str, Any]:
    responses: dict[str, Any] = {
        "200": {"description": "OK", "content": {"application/json": {"schema": schema}}},
        "400": {"description": "Bad request", "content": {"application/json": {"schema": _ERROR}}},
    }
    if authed:
        responses["401"] = {
            "description": "Missing or invalid API key",
            "content": {"application/json": {"schema": _ERROR}},
        }
        responses["429"] = {
            "description": "Rate limited (see Retry-After)",
            "content": {"application/json": {"schema": _ERROR}},
        }
    return responses


def document(version: str) -> dict[str, Any]:
    secured: list[dict[str, list[str]]] = [
        {"bearer": []},
        {"apiKeyHeader": []},
        {"apiKeyQuery": []},
    ]
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "Purple Flea Liquidation Tracker",
            "version": version,
            "description": "Forced liquidations across crypto perpetual markets, normalized. "
            "Streams: WebSocket /v1/stream (see the SDK) and SSE /v1/stream/sse.",
        },
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "apiKeyHeader": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
                "apiKeyQuery": {"type": "apiKey", "in": "query", "name": "api_key"},
            },
            "schemas": {"Liquidation": _LIQUIDATION, "Error": _ERROR},
        },
        "paths": {
            "/v1/liquidations": {
                "get": {
                    "summary": "Liquidation history, newest first, cursor-paged.",
                    "security": secured,
                    "parameters": [
                        *_FILTERS,
                        _param(
                            "cursor",
                            {"type": "integer", "minimum": 1},
                            "next_cursor of the previous page.",
                        ),
                        _param(
                            "limit",
                            {"type": "integer", "minimum": 1, "maximum": 1000},
                            "Page size (default 100).",
                        ),
                    ],
                    "responses": _responses(
                        {
                            "type": "object",
                            "properties": {
                                "events": {"type": "array", "items": _LIQUIDATION},
                                "next_cursor": {"type": "integer", "nullable": True},
                            },
                        }
                    ),
                }
            },
            "/v1/liquidations/aggregate": {
                "get": {
                    "summary": "Counts and notional per interval and group.",
                    "security": secured,
                    "parameters": [
                        *_FILTERS,
                        _param(
                            "interval",
                            {"type": "string", "enum": ["1m", "1h", "1d"]},
                            "Bucket width (default 1h).",
                        ),
                        _param(
                            "group_by",
                            {"type": "string", "enum": ["market", "exchange", "side"]},
                            "Grouping (default market).",
                        ),
                    ],
                    "responses": _responses({"type": "object"}),
                }
            },
            "/v1/markets": {
                "get": {
                    "summary": "Markets seen, with 24 h liquidation totals.",
                    "security": secured,
                    "responses": _responses({"type": "object"}),
                }
            },
            "/v1/cascades": {
                "get": {
                    "summary": "Cascade alerts: the latest state of each cascade, newest first.",
                    "security": secured,
                    "parameters": [
                        _param(
                            "status",
                            {"type": "string", "enum": ["active", "past", "all"]},
                            "Which cascades (default all).",
                        ),
                        _param("market", _LIST, "Markets."),
                        _param(
                            "limit",
                            {"type": "integer", "minimum": 1, "maximum": 1000},
                            "At most this many (default 100).",
                        ),
                    ],
                    "responses": _responses({"type": "object"}),
                }
            },
            "/v1/keys": {
                "post": {
                    "summary": "Register for a free API key (or, with a key, add one).",
                    "requestBody": {
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "properties": {
                                        "account": {"type": "string"},
                                        "name": {"type": "string"},
                                    },
                                }
                            }
                        }
                    },
                    "responses": {
                        "201": {"description": "Created: the key is shown once."},
                        "400": {"description": "Bad request"},
                        "429": {"description": "Too many registrations"},
                    },
                },
                "get": {
                    "summary": "The keys of the caller's account.",
                    "security": secured,
                    "responses": _responses({"type": "object"}),
                },
            },
            "/v1/keys/{key_id}": {
                "delete": {
                    "summary": "Revoke a key of the caller's account; its streams close.",
                    "security": secured,
                    "parameters": [
                        _param("key_id", {"type": "string"}, "The key's id.", inside="path")
                    ],
                    "responses": {
                        **_responses({"type": "object"}),
                        "404": {"description": "No such active key"},
                    },
                }
            },
            "/v1/stream/sse": {
                "get": {
                    "summary": "Server-Sent Events stream with server-side filters and resume.",
                    "security": secured,
                    "parameters": [
                        *_FILTERS[:4],
                        _param("channels", _LIST, "liquidations and/or cascades."),
                        _param(
                            "since_seq",
                            {"type": "integer", "minimum": 0},
                            "Resume after this seq (or send Last-Event-ID).",
                        ),
                    ],
                    "responses": {
                        "200": {"description": "text/event-stream"},
                        "400": {"description": "Bad subscription"},
                        "401": {"description": "Missing or invalid API key"},
                        "429": {
                            "description": "The account's stream caps (too_many_streams, "
                            "rate_limited; see Retry-After)"
                        },
                        "503": {"description": "The server is shutting down"},
                    },
                }
            },
            "/v1/health": {
                "get": {
                    "summary": "Liveness and ingest state.",
                    "responses": _responses({"type": "object"}, authed=False),
                }
            },
            "/v1/metrics": {
                "get": {
                    "summary": "Prometheus metrics.",
                    "responses": {"200": {"description": "text/plain"}},
                }
            },
        },
    }
