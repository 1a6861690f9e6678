"""Small HTTP helpers shared by the routes: JSON responses, errors, query parsing."""

from __future__ import annotations

import asyncio
import difflib
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import msgspec
from starlette.datastructures import QueryParams
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route

from purpleflea.clock import parse_when, seconds_mistake, utc_iso
from purpleflea.model import encode
from purpleflea.server.filters import exchange_hint, spelled_as_known
from purpleflea.store.base import StoreUnavailable

if TYPE_CHECKING:
    from purpleflea.server.auth import AuthError

#: The largest integer a query parameter takes unless it says otherwise (well inside SQLite's
#: and PostgreSQL's 64-bit integers).
MAX_INTEGER = 2**62


class BadRequest(ValueError):
    """A request parameter is wrong; the message names it."""


#: Every JSON answer: a browser must never read one as HTML (a 404 echoes the path it got),
#: and no cache may keep one. Most belong to one account (its keys, its webhooks' URLs, a new
#: key), and the key may come in ``X-API-Key`` or ``?api_key=``, which caches do not see as
#: credentials (RFC 9111 3.5 holds back only for ``Authorization``): without this a shared
#: cache could hand one account's answer to whoever asks the same URL next.
_JSON_HEADERS = {"X-Content-Type-Options": "nosniff", "Cache-Control": "no-store"}


def json_response(
    value: object, status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    return Response(
        encode(value),
        status_code=status,
        media_type="application/json",
        headers={**_JSON_HEADERS, **headers} if headers else _JSON_HEADERS,
    )


def error_response(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> Response:
    return json_response({"error": {"code": code, "message": message}}, status, headers)


def refusal(exc: AuthError) -> Response:
    """A refused key or request: a 401 names the scheme to use (RFC 9110), a 429 when to
    retry."""
    headers = {"Retry-After": exc.retry_after} if exc.retry_after else None
    if exc.status == 401:
        headers = {"WWW-Authenticate": "Bearer"}
    return error_response(exc.status, exc.code, exc.message, headers)


_HTTP_CODES = {404: "not_found", 405: "method_not_allowed"}


async def http_error(request: Request, exc: Exception) -> Response:
    """Starlette's own refusals (no such route, method not allowed) in the API's JSON error
    body, with their headers (a 405's Allow)."""
    if not isinstance(exc, HTTPException):  # registered for HTTPException only
        raise exc
    code = _HTTP_CODES.get(exc.status_code, "http_error")
    message = f"{request.method} {request.url.path}: {exc.detail}"
    if exc.status_code == 404 and not _routed(request):
        message = f"{request.method} {request.url.path}: {_no_route(request)}"
    return error_response(exc.status_code, code, message, dict(exc.headers or {}))


def _routed(request: Request) -> bool:
    """Whether some route took the request (its 404 is about the thing it names): Starlette's
    router records the route it handed a request to in the scope."""
    return "route" in request.scope


def _no_route(request: Request) -> str:
    """``no such route (did you mean /v1/liquidations? ...)``: the nearest route's path and
    the document that lists them all, where a mistyped path was answered "Not Found"."""
    path = request.url.path
    paths = sorted({r.path for r in getattr(request.app, "routes", ()) if isinstance(r, Route)})
    # A route under the path first: /v1/heatmap is /v1/heatmap/{market}'s, not /v1/health's.
    under = [p for p in paths if p.startswith(path.rstrip("/") + "/")]
    nearest = under or (difflib.get_close_matches(path, paths, n=1) if len(path) <= 100 else [])
    guess = f"did you mean {nearest[0]}? " if nearest else ""
    return f"no such route ({guess}GET /openapi.json lists every route)"


async def store_unavailable(request: Request, exc: Exception) -> Response:
    """A request that needs the store while its database cannot be reached: 503 in the API's
    JSON error body (it was Starlette's plain-text 500), with when to retry. The database's
    own error stays in the server's log and ``/v1/health``: it names internal hosts."""
    if not isinstance(exc, StoreUnavailable):  # registered for StoreUnavailable only
        raise exc
    return error_response(
        503,
        "store_unavailable",
        f"{request.method} {request.url.path}: the history store cannot be reached now; "
        "retry in a few seconds",
        {"Retry-After": "5"},
    )


def strings(params: QueryParams, name: str) -> tuple[str, ...]:
    """A list parameter, repeated (``?market=A&market=B``) or comma-separated."""
    values: list[str] = []
    for raw in params.getlist(name):
        if not raw.strip():
            raise BadRequest(_empty(name))
        values.extend(v.strip() for v in raw.split(",") if v.strip())
    for value in values:
        if len(value) > 64:
            raise BadRequest(f"{name}: values are at most 64 characters")
    if len(values) > 500:
        raise BadRequest(f"{name}: at most 500 values")
    return tuple(values)


def exchanges(params: QueryParams, known: Sequence[str]) -> tuple[str, ...]:
    """The ``exchange`` list parameter: ids among ``known``, taken in any case (capitals
    read as the id); BadRequest naming a value that is none of them."""
    given = spelled_as_known(strings(params, "exchange"), known)
    for exchange in given:
        if exchange not in known:
            raise BadRequest(
                f"unknown exchange {exchange!r}; known: {', '.join(known)}"
                f"{exchange_hint([exchange], known)}"
            )
    return given


def _empty(name: str) -> str:
    return f"{name} is empty: give a value or leave the parameter out for its default"


def _given(params: QueryParams, name: str) -> str | None:
    """The parameter's value, None when absent. Present but empty is an error, not the
    default: the schema says what a value looks like, and "" is none of them."""
    raw = params.get(name)
    if raw is not None and not raw.strip():
        raise BadRequest(_empty(name))
    return raw


def number(params: QueryParams, name: str, default: float) -> float:
    value = optional_number(params, name)
    return default if value is None else value


def optional_number(params: QueryParams, name: str, *, positive: bool = False) -> float | None:
    """A finite number >= 0 (``positive``: above 0), None when the parameter is absent."""
    raw = _given(params, name)
    if raw is None:
        return None
    try:
        value = float(raw)
    except ValueError:
        raise BadRequest(f"{name} must be a number, got {raw!r}") from None
    if not math.isfinite(value) or value < 0 or (positive and value == 0):
        # A heatmap's bucket of -5 was told ">= 0", and its 0 then "must be positive".
        least = "above 0" if positive else ">= 0"
        raise BadRequest(f"{name} must be a finite number {least}, got {raw!r}")
    return value


def integer(
    params: QueryParams, name: str, default: int | None, *, low: int = 0, high: int = MAX_INTEGER
) -> int | None:
    raw = _given(params, name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise BadRequest(f"{name} must be an integer, got {raw!r}") from None
    if not low <= value <= high:
        raise BadRequest(f"{name} must be between {low} and {high}, got {value}")
    return value


def epoch_ms(params: QueryParams, name: str, default: int | None, *, low: int = 0) -> int | None:
    """A time in ms since the epoch (:func:`integer`); a value that looks like seconds is
    refused saying so (read as ms it is 1970-1973, and the filter would pass silently); a
    date or a time ago (what the SDK and the commands take) is refused with its ms."""
    raw = _given(params, name)
    try:
        int(raw or "0")
    except ValueError:
        try:
            hint = f"; as ms, {raw!r} is {parse_when(raw or '')}"
        except ValueError:
            hint = ""
        raise BadRequest(
            f"{name} must be ms since the epoch (an integer), got {raw!r}{hint}"
        ) from None
    value = integer(params, name, default, low=low)
    if value is not None and value != default:
        mistake = seconds_mistake(name, value)
        if mistake is not None:
            raise BadRequest(mistake)
    return value


def check_window(start: int | None, end: int | None) -> None:
    """Refuse an ``end`` at or before ``start``, saying both as times too: a client that took
    "2026-12-07" or "6h" for them sees what they became, not only two 13-digit numbers."""
    if start is not None and end is not None and end <= start:
        raise BadRequest(
            f"end ({end}, {utc_iso(end)}) must be after start ({start}, {utc_iso(start)})"
        )


def choice(
    params: QueryParams, name: str, options: Sequence[str], default: str, *, any_case: bool = True
) -> str:
    """One of ``options``; ``default`` when absent. Empty or anything else is refused.

    Words are taken in any case, as sides and exchanges are (``order=TS`` was refused beside
    ``side=SHORT`` taken); ``any_case=False`` where case carries meaning (``1m`` and ``1M``)."""
    value = params.get(name)
    if value is None:
        return default
    if any_case and value not in options and value.lower() in options:
        return value.lower()
    if value not in options:
        raise BadRequest(f"{name} must be one of {', '.join(options)}, got {value!r}")
    return value


def decode_json(data: bytes | str, what: str) -> object:
    """A JSON document a client sent (``what`` names it in the error): :class:`BadRequest`
    when it is not JSON, or when its arrays and objects nest deeper than the decoder goes.
    That one is a RecursionError, not a decode error: 2 KB of ``[[[...]]]`` made a 500 and a
    traceback in the log, for anyone, as fast as the server answered."""
    try:
        return msgspec.json.decode(data)
    except msgspec.DecodeError as exc:
        raise BadRequest(f"{what} is not valid JSON: {exc}") from None
    except RecursionError:
        raise BadRequest(
            f"{what} is nested too deeply (arrays and objects within each other)"
        ) from None


#: The most a request body may hold: the routes that take one (``POST /v1/keys``,
#: ``POST /v1/webhooks``) take a small JSON object.
MAX_BODY = 16_384
#: Seconds a client has to send its whole request body once the headers arrived.
BODY_TIMEOUT_S = 10.0


async def json_body(
    request: Request, *, limit: int = MAX_BODY, timeout_s: float | None = None
) -> dict[str, object]:
    """The request's body as a JSON object. Read as it arrives and refused as soon as it
    passes ``limit`` bytes, or when it has not all arrived within ``timeout_s`` (default
    :data:`BODY_TIMEOUT_S`): a stranger's 1 GiB body (registration needs no key) was read whole
    into memory before being refused, and a body that never ends held its request forever."""
    timeout_s = BODY_TIMEOUT_S if timeout_s is None else timeout_s
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise BadRequest(f"request body over {limit} bytes (Content-Length {declared})")
    chunks: list[bytes] = []
    size = 0
    try:
        async with asyncio.timeout(timeout_s):
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise BadRequest(f"request body over {limit} bytes")
                chunks.append(chunk)
    except TimeoutError:
        raise BadRequest(f"request body not received within {timeout_s:g} s") from None
    except ClientDisconnect:
        # Nobody reads this answer; raised on, it was a 500 and a ~50-line traceback in the
        # server's log for every body a stranger cut short (registration needs no key).
        raise BadRequest(f"request body cut short after {size} bytes: the client left") from None
    body = b"".join(chunks)
    if not body.strip():
        return {}
    value = decode_json(body, "request body")
    if not isinstance(value, dict):
        raise BadRequest("request body must be a JSON object")
    return value
