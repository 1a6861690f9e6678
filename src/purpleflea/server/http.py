"""Small HTTP helpers shared by the routes: JSON responses, errors, query parsing."""

from __future__ import annotations

import math
from collections.abc import Sequence

import msgspec
from starlette.datastructures import QueryParams
from starlette.responses import Response

from purpleflea.model import encode


class BadRequest(ValueError):
    """A request parameter is wrong; the message names it."""


def json_response(
    value: object, status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    return Response(
        encode(value), status_code=status, media_type="application/json", headers=headers
    )


def error_response(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> Response:
    return json_response({"error": {"code": code, "message": message}}, status, headers)


def strings(params: QueryParams, name: str) -> tuple[str, ...]:
    """A list parameter, repeated (``?market=A&market=B``) or comma-separated."""
    values: list[str] = []
    for raw in params.getlist(name):
        values.extend(v.strip() for v in raw.split(",") if v.strip())
    for value in values:
        if len(value) > 64:
            raise BadRequest(f"{name}: values are at most 64 characters")
    if len(values) > 500:
        raise BadRequest(f"{name}: at most 500 values")
    return tuple(values)


def number(params: QueryParams, name: str, default: float) -> float:
    raw = params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise BadRequest(f"{name} must be a number, got {raw!r}") from None
    if not math.isfinite(value) or value < 0:
        raise BadRequest(f"{name} must be a finite number >= 0, got {raw!r}")
    return value


def integer(
    params: QueryParams, name: str, default: int | None, *, low: int = 0, high: int = 2**62
) -> int | None:
    raw = params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise BadRequest(f"{name} must be an integer, got {raw!r}") from None
    if not low <= value <= high:
        raise BadRequest(f"{name} must be between {low} and {high}, got {value}")
    return value


def choice(params: QueryParams, name: str, options: Sequence[str], default: str) -> str:
    value = params.get(name) or default
    if value not in options:
        raise BadRequest(f"{name} must be one of {', '.join(options)}, got {value!r}")
    return value


async def json_body(body: bytes, *, limit: int = 16_384) -> dict[str, object]:
    if len(body) > limit:
        raise BadRequest(f"request body over {limit} bytes")
    if not body.strip():
        return {}
    try:
        value = msgspec.json.decode(body)
    except msgspec.DecodeError as exc:
        raise BadRequest(f"request body is not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise BadRequest("request body must be a JSON object")
    return value
