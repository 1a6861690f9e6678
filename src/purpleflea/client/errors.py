"""The SDK's errors: what the server reported, or what the client found wrong before asking."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from purpleflea.clock import retry_after_seconds
from purpleflea.formatting import printable

if TYPE_CHECKING:
    import httpx


class PurpleFleaError(Exception):
    """An error the server reported (``code``) or the client detected."""

    def __init__(self, message: str, code: str = "error", status: int | None = None) -> None:
        # Escaped: the server (or whoever answers at its URL) chose most of them, and every
        # command prints them: an ESC or a CR in an error frame drove the user's terminal.
        super().__init__(printable(message))
        self.code = printable(code)
        self.status = status


class AuthenticationError(PurpleFleaError):
    """Missing, invalid or revoked API key."""


class BadRequestError(PurpleFleaError):
    """A parameter or stream filter the server rejected; the message says which."""


class ServerUnreachableError(PurpleFleaError):
    """No server answered: refused, unknown host, no answer within ``timeout``, or the
    connection lost mid-request (``code`` ``unreachable`` or ``timeout``). The message names
    the servers tried and what to do; ``__cause__`` is the transport's own error."""


class RateLimitError(PurpleFleaError):
    """Too many requests; ``retry_after`` says how long to wait (seconds)."""

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message, "rate_limited", 429)
        self.retry_after = retry_after


#: Stream error codes that reconnecting cannot fix: they end the stream with this error.
FATAL_STREAM_ERRORS: dict[str, type[PurpleFleaError]] = {
    "missing_api_key": AuthenticationError,
    "invalid_api_key": AuthenticationError,
    "key_revoked": AuthenticationError,
    "bad_subscription": BadRequestError,
    # A since_seq beyond the server's last (a new or wiped store, another cluster).
    "resume_ahead": BadRequestError,
}


def raise_for_response(response: httpx.Response) -> None:
    """Raise the error a REST answer of 400 or above carries (the server's ``error.code`` and
    ``error.message`` when it sent them); return for any other answer."""
    if response.status_code < 400:
        return
    try:
        error = response.json()["error"]
        code, message = str(error["code"]), str(error["message"])
    except (ValueError, KeyError, TypeError):
        # Not our error shape: most often base_url names another service (a dev server on
        # the same port) or a path under the server's root, which the bare status hides.
        code, message = (
            "http_error",
            f"HTTP {response.status_code} from {response.request.method} {response.request.url}"
            f", not a Purple Flea answer ({response.text[:120]!r}): is the URL a Purple Flea "
            "server's root (PURPLEFLEA_URL or base_url, e.g. http://127.0.0.1:8000)?",
        )
    request = response.request
    if response.status_code == 404 and message.startswith(f"{request.method} {request.url.path}:"):
        # The server's answer for a route it does not have: every route the SDK asks exists
        # at a server's root, so the URL given has a path too many (".../v1").
        # Said in the SDK's words: the server's own ("Not Found", or "no such route (did you
        # mean /v1/liquidations? ...)") points at the route, not at the URL the user gave.
        root = str(request.url.copy_with(path="/", query=None)).rstrip("/")
        message = (
            f"{request.method} {request.url.path}: no such route on the server at {root}; is "
            "the URL given (PURPLEFLEA_URL or base_url) the server's root, without a path?"
        )
    if response.status_code == 429:
        # Seconds or an HTTP date (RFC 9110); absent or unreadable: the server's own floor.
        wait = retry_after_seconds(response.headers.get("retry-after"), now=time.time())
        raise RateLimitError(message, 1.0 if wait is None else wait)
    if response.status_code in (401, 403):
        raise AuthenticationError(message, code, response.status_code)
    if response.status_code == 400:
        raise BadRequestError(message, code, 400)
    raise PurpleFleaError(message, code, response.status_code)
