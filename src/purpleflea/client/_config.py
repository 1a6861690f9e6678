"""Where the client's server addresses and key come from, and how filters are spelled."""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime

from purpleflea.client.errors import BadRequestError
from purpleflea.clock import parse_when

DEFAULT_URL = "http://127.0.0.1:8000"
#: The key the product page's example passes; it means "take the key from the environment".
PLACEHOLDER_KEY = "YOUR_KEY"

#: A filter's values: one name, several, or None for "any".
Names = str | Iterable[str] | None
#: A point in time: ms since the epoch (a float such as ``time.time() * 1000`` is rounded), a
#: datetime (a naive one is UTC, as every time of the API is), a date (its UTC midnight), or
#: what the commands' ``--start`` takes: ``"2025-10-10"``, ``"2025-10-10T20:30"``, ``"6h"``
#: ago; None for "no bound".
Time = int | float | datetime | date | str | None


def resolve_key(api_key: str | None) -> str | None:
    """``api_key``, else ``$PURPLEFLEA_API_KEY`` (the placeholder counts as not given), without
    surrounding whitespace: a key pasted with its newline (``$(cat key.txt)``) made an illegal
    header, reported as an unreachable server with the key in the message."""
    if api_key and api_key.strip() and api_key.strip() != PLACEHOLDER_KEY:
        return api_key.strip()
    return os.environ.get("PURPLEFLEA_API_KEY", "").strip() or None


def server_urls(base_url: str | Sequence[str] | None, *, name: str = "base_url") -> tuple[str, ...]:
    """The server URLs ``base_url`` (or ``$PURPLEFLEA_URL``, else :data:`DEFAULT_URL`) names,
    in the order to try. A ValueError names where a wrong one came from: ``name`` (what the
    caller calls ``base_url``: ``--url`` for a command) or ``$PURPLEFLEA_URL``."""
    origin = name if base_url else "$PURPLEFLEA_URL"
    given = base_url or os.environ.get("PURPLEFLEA_URL") or DEFAULT_URL
    items = given.split(",") if isinstance(given, str) else list(given)
    urls = tuple(item.strip().rstrip("/") for item in items if item.strip())
    if not urls:
        raise ValueError(f"{origin} names no server: {given!r}")
    for url in urls:
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"{origin} must start with http:// or https://: {url!r}")
    return urls


def recorded_elsewhere(servers: Sequence[str]) -> str:
    """``"; `purpleflea serve` in this folder runs at URL (data/server.json): set
    PURPLEFLEA_URL=URL"`` when ``servers`` is the default alone and a running server recorded
    another address in ``./data`` (``serve --port 0``, or another ``--port``), which the
    commands find by themselves and the SDK does not; else ``""``. A URL given by the user is
    theirs: nothing is said of the folder's server then."""
    if tuple(servers) != (DEFAULT_URL,):
        return ""
    from pathlib import Path  # noqa: PLC0415 - only when no server answered

    from purpleflea.local_server import FILE_NAME, find_address  # noqa: PLC0415

    running = find_address(Path("data"))
    if running is None or running == DEFAULT_URL:
        return ""
    return (
        f"; `purpleflea serve` in this folder runs at {running} (data/{FILE_NAME}): set "
        f"PURPLEFLEA_URL={running}"
    )


def ws_url(base_url: str) -> str:
    """The stream's WebSocket URL on the server at ``base_url``."""
    return "ws" + base_url[len("http") :] + "/v1/stream"


def as_list(values: str | Iterable[str] | None, name: str = "filter") -> list[str] | None:
    """``values`` as a list of names (None: not given); ``name`` (``markets=``) names the
    argument in the TypeError a value that is neither a name nor a list raises (a bare
    ``markets=5`` said only "'int' object is not iterable")."""
    if values is None:
        return None
    if isinstance(values, str):
        return [values]
    try:
        return list(values)
    except TypeError:
        raise TypeError(
            f"{name} takes a name or a list of names, got {values!r} ({type(values).__name__})"
        ) from None


def as_json_number(value: object) -> object:
    """``value`` for a JSON body (a stream's subscription, a webhook's filters): a float that
    JSON cannot hold (NaN, an infinity) as its text, ``'nan'``, which the server refuses by
    that value as it does in a query string. As a float, msgspec wrote it as null (refused as
    "got None") and httpx raised "Out of range float values are not JSON compliant", naming
    no argument."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


def one_of(plural: Names, singular: Names, name: str) -> list[str] | None:
    """A filter given as ``markets=`` (documented) or ``market=`` (REST's and the CLI's
    spelling, accepted too), never both."""
    if singular is not None and plural is not None:
        raise TypeError(f"pass {name}s= or {name}=, not both")
    if singular is None:
        return as_list(plural, f"{name}s=")
    return as_list(singular, f"{name}=")


def as_ms(value: Time, name: str) -> int | None:
    """``value`` as the API's integer ms since the epoch (UTC); ``name`` (``start``) names it
    in the :class:`BadRequestError` a string that is no time raises (:func:`parse_when`'s
    forms, as the commands read ``--start``)."""
    if isinstance(value, datetime):
        moment = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
        return round(moment.timestamp() * 1000)
    if isinstance(value, date):
        return round(datetime(value.year, value.month, value.day, tzinfo=UTC).timestamp() * 1000)
    if isinstance(value, str):
        try:
            return parse_when(value)
        except ValueError as error:
            raise BadRequestError(f"{name}: {error}", "bad_request") from None
    if isinstance(value, float):
        return round(value)
    return value


def seconds(value: float, name: str) -> float:
    """``value``, a client setting in seconds (``timeout=``, ``idle_timeout=``), checked: a
    positive, finite number, else :class:`BadRequestError` naming it (a TypeError for what is
    no number). ``timeout=0`` read as "no Purple Flea server answers at URL" of a running
    server, and ``idle_timeout=0`` dropped and reopened the stream as fast as it could."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{name} must be a number of seconds, got {value!r}")
    if not (math.isfinite(value) and value > 0):
        raise BadRequestError(
            f"{name} must be a positive number of seconds, got {value!r}", "bad_request"
        )
    return float(value)
