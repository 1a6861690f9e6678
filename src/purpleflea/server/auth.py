"""Who may call: API key lookup, per-account rate limits, and cutting revoked keys' streams.

A key is read from ``Authorization: Bearer <key>``, ``X-API-Key: <key>`` or (for browsers'
WebSockets and EventSource, which cannot set headers) the ``api_key`` query parameter. Key
values are never logged: the access log redacts ``api_key`` (see :mod:`purpleflea.server.app`).
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from purpleflea.server.keys import KeyInfo, KeyStore
from purpleflea.server.ratelimit import RateLimiter


class AuthError(Exception):
    """``status`` and ``code`` for the response; the message says what to do."""

    def __init__(self, status: int, code: str, message: str, retry_after: str | None = None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.retry_after = retry_after


def key_from(headers: Mapping[str, str], query: Mapping[str, str]) -> str | None:
    authorization = headers.get("authorization", "")
    if authorization.lower().startswith("bearer "):
        return authorization[7:].strip() or None
    return headers.get("x-api-key") or query.get("api_key") or None


@dataclass
class StreamRegistry:
    """Open streams by key id, so that revoking a key can close them."""

    _streams: dict[str, set[Callable[[str], None]]] = field(
        default_factory=lambda: defaultdict(set)
    )

    def add(self, key_id: str, kick: Callable[[str], None]) -> None:
        self._streams[key_id].add(kick)

    def remove(self, key_id: str, kick: Callable[[str], None]) -> None:
        streams = self._streams.get(key_id)
        if streams is not None:
            streams.discard(kick)
            if not streams:
                del self._streams[key_id]

    def kick(self, key_id: str, reason: str) -> int:
        streams = self._streams.pop(key_id, set())
        for kick in streams:
            kick(reason)
        return len(streams)

    def __len__(self) -> int:
        return sum(len(s) for s in self._streams.values())


class Gate:
    """Authenticates requests and applies the per-account rate limit."""

    def __init__(self, keys: KeyStore, limiter: RateLimiter) -> None:
        self.keys = keys
        self.limiter = limiter
        self.streams = StreamRegistry()
        self.counters: dict[str, int] = defaultdict(int)
        # Verified keys are cached briefly so a burst of requests costs one lookup; a
        # revocation evicts its key at once (and the poll below catches other processes').
        self._cache: dict[str, KeyInfo] = {}

    def authenticate(self, key: str | None) -> KeyInfo:
        if not key:
            self.counters["missing_key"] += 1
            raise AuthError(
                401,
                "missing_api_key",
                "an API key is required: send 'Authorization: Bearer <key>' (get a free key "
                "with POST /v1/keys or `purpleflea keys create`)",
            )
        info = self._cache.get(key)
        if info is None:
            info = self.keys.verify(key)
            if info is None:
                self.counters["invalid_key"] += 1
                raise AuthError(
                    401, "invalid_api_key", "the API key is not valid (unknown or revoked)"
                )
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[key] = info
        return info

    def limit(self, info: KeyInfo) -> None:
        """Charge one request to the key's ACCOUNT: keys are free to mint (up to a cap), so a
        per-key budget would multiply with every key minted."""
        wait = self.limiter.acquire(info.account)
        if wait > 0:
            self.counters["rate_limited"] += 1
            raise AuthError(
                429,
                "rate_limited",
                f"rate limit of {self.limiter.rate:g} requests/s (burst "
                f"{self.limiter.burst:g}) exceeded for account {info.account!r}; retry after "
                f"{wait:.2f} s",
                retry_after=RateLimiter.retry_after_header(wait),
            )

    def revoked(self, key_id: str) -> int:
        """Forget a revoked key and close its streams; returns how many were closed."""
        for key, info in list(self._cache.items()):
            if info.key_id == key_id:
                del self._cache[key]
        return self.streams.kick(key_id, "key_revoked")

    async def watch_revocations(self, interval: float, now_ms: Callable[[], int]) -> None:
        """Poll the key store for revocations made by other processes (the CLI)."""
        since = now_ms() - 1_000
        while True:
            await asyncio.sleep(interval)
            checked = now_ms()
            for key_id in self.keys.revoked_since(since):
                self.revoked(key_id)
            since = checked - 1_000  # overlap: a revocation committed mid-poll is seen twice
