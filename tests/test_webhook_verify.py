"""``purpleflea.verify_webhook``: what a receiver runs on every delivery (pure, no server)."""

from __future__ import annotations

import hashlib
import hmac

import pytest

import purpleflea
from purpleflea.webhook import sign

SECRET = "whsec_test_secret_0123456789"
BODY = b'{"type":"liquidation","data":{"id":"bybit:1","seq":7}}'
NOW = 1_760_000_000


def _headers(body: bytes = BODY, *, secret: str = SECRET, ts: int = NOW) -> dict[str, str]:
    return {
        "X-Purpleflea-Timestamp": str(ts),
        "X-Purpleflea-Signature": sign(secret, ts, body),
        "X-Purpleflea-Event-Id": "7",
    }


def test_the_signature_is_the_documented_hmac_of_timestamp_dot_body() -> None:
    # The recipe in docs/webhooks.md, written out with the standard library alone.
    expected = hmac.new(SECRET.encode(), f"{NOW}.".encode() + BODY, hashlib.sha256).hexdigest()
    assert sign(SECRET, NOW, BODY) == f"sha256={expected}"


def test_a_genuine_delivery_verifies_and_returns_its_frame() -> None:
    frame = purpleflea.verify_webhook(SECRET, BODY, _headers(), now=NOW + 10)
    assert frame == {"type": "liquidation", "data": {"id": "bybit:1", "seq": 7}}


def test_header_names_are_case_insensitive() -> None:
    lowered = {k.lower(): v for k, v in _headers().items()}
    assert purpleflea.verify_webhook(SECRET, BODY, lowered, now=NOW)["type"] == "liquidation"


@pytest.mark.parametrize(
    ("what", "secret", "body", "headers", "match"),
    [
        ("changed body", SECRET, BODY.replace(b"7", b"8"), _headers(), "does not match"),
        ("wrong secret", "whsec_another_secret_000", BODY, _headers(), "does not match"),
        ("re-encoded body", SECRET, BODY.replace(b":", b": "), _headers(), "raw bytes"),
        (
            "no signature",
            SECRET,
            BODY,
            {"X-Purpleflea-Timestamp": str(NOW)},
            "no X-Purpleflea-Signature",
        ),
        ("no timestamp", SECRET, BODY, {"X-Purpleflea-Signature": "sha256=00"}, "Timestamp"),
        (
            "bad timestamp",
            SECRET,
            BODY,
            {**_headers(), "X-Purpleflea-Timestamp": "soon"},
            "whole seconds",
        ),
        (
            "timestamp moved",
            SECRET,
            BODY,
            {**_headers(), "X-Purpleflea-Timestamp": str(NOW + 1)},
            "does not match",
        ),
    ],
)
def test_a_forged_or_broken_delivery_is_refused(
    what: str, secret: str, body: bytes, headers: dict[str, str], match: str
) -> None:
    with pytest.raises(purpleflea.WebhookVerificationError, match=match):
        purpleflea.verify_webhook(secret, body, headers, now=NOW)


def test_an_old_delivery_sent_again_is_refused() -> None:
    headers = _headers(ts=NOW - 301)
    with pytest.raises(purpleflea.WebhookVerificationError, match="tolerance of 300 s"):
        purpleflea.verify_webhook(SECRET, BODY, headers, now=NOW)
    # A receiver that wants a wider window says so.
    assert purpleflea.verify_webhook(SECRET, BODY, headers, now=NOW, tolerance_s=600)


def test_a_signed_body_that_is_not_a_json_object_is_refused() -> None:
    body = b"[1, 2]"
    with pytest.raises(purpleflea.WebhookVerificationError, match="not a JSON object"):
        purpleflea.verify_webhook(SECRET, body, _headers(body), now=NOW)
