"""Webhook signatures: how the server signs a delivery and how a receiver checks it.

Every webhook delivery is an HTTP POST whose body is one stream frame (``{"type":
"liquidation", "data": {...}}`` or ``{"type": "cascade", "data": {...}}``) with three headers:

- ``X-Purpleflea-Timestamp``: when it was signed, whole seconds since the epoch;
- ``X-Purpleflea-Signature``: ``sha256=`` + hex HMAC-SHA256, keyed with the webhook's secret,
  of the timestamp, a ``.``, then the raw body bytes;
- ``X-Purpleflea-Event-Id``: the item's ``seq``, the same on every retry and replay (a
  receiver that sees it twice has seen the item before).

Signing the timestamp with the body lets a receiver refuse an old delivery that someone
recorded and sends again: :func:`verify_webhook` refuses one signed more than
``tolerance_s`` away from now. Pure: no I/O, the clock can be passed in.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Mapping
from typing import Any

import msgspec

SIGNATURE_HEADER = "X-Purpleflea-Signature"
TIMESTAMP_HEADER = "X-Purpleflea-Timestamp"
EVENT_ID_HEADER = "X-Purpleflea-Event-Id"
WEBHOOK_ID_HEADER = "X-Purpleflea-Webhook-Id"
#: How far (seconds) a delivery's timestamp may be from the receiver's clock by default.
DEFAULT_TOLERANCE_S = 300


class WebhookVerificationError(ValueError):
    """A delivery that did not pass :func:`verify_webhook`; the message says why."""


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The ``X-Purpleflea-Signature`` value of ``body`` signed at ``timestamp``."""
    digest = hmac.new(secret.encode(), b"%d." % timestamp + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def _header(headers: Mapping[str, str], name: str) -> str:
    """A header by case-insensitive name (plain dicts, Starlette, httpx, Flask, ...)."""
    value = headers.get(name)
    if value is None:
        lowered = name.lower()
        for key, candidate in headers.items():
            if key.lower() == lowered:
                return candidate
        raise WebhookVerificationError(f"webhook delivery has no {name} header")
    return value


def verify_webhook(
    secret: str,
    body: bytes,
    headers: Mapping[str, str],
    *,
    tolerance_s: float = DEFAULT_TOLERANCE_S,
    now: float | None = None,
) -> dict[str, Any]:
    """Check a webhook delivery and return its decoded JSON frame.

    ``body`` must be the raw bytes as received (not re-encoded JSON); ``headers`` the request's
    headers. Raises :class:`WebhookVerificationError` when a header is missing or malformed,
    the signature does not match ``secret``, or the timestamp is more than ``tolerance_s``
    seconds from ``now`` (default: this machine's clock).
    """
    raw_ts = _header(headers, TIMESTAMP_HEADER)
    try:
        timestamp = int(raw_ts)
    except ValueError:
        raise WebhookVerificationError(
            f"{TIMESTAMP_HEADER} is not whole seconds since the epoch: {raw_ts!r}"
        ) from None
    given = _header(headers, SIGNATURE_HEADER)
    if not hmac.compare_digest(given.encode(), sign(secret, timestamp, body).encode()):
        raise WebhookVerificationError(
            f"{SIGNATURE_HEADER} does not match the body and timestamp (wrong secret, or the "
            "body was changed: verify the raw bytes)"
        )
    clock = time.time() if now is None else now
    if abs(clock - timestamp) > tolerance_s:
        raise WebhookVerificationError(
            f"{TIMESTAMP_HEADER} {timestamp} is {clock - timestamp:+.0f} s from now, beyond the "
            f"tolerance of {tolerance_s:g} s (a replayed delivery, or a wrong clock)"
        )
    try:
        frame = msgspec.json.decode(body)
    except msgspec.DecodeError as exc:
        raise WebhookVerificationError(f"webhook body is not JSON: {exc}") from None
    if not isinstance(frame, dict):
        raise WebhookVerificationError("webhook body is not a JSON object")
    return frame
