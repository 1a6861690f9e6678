"""Sending one webhook delivery: sign, POST to a checked address, report the
:class:`~purpleflea.server.webhook_policy.Outcome`. Used by the dispatcher (live deliveries,
on the delivering node) and by :func:`replay_dead_letters` (on whichever API node was asked).
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Callable, Iterable
from typing import Any

import httpcore
import httpx

import purpleflea
from purpleflea.clock import retry_after_seconds
from purpleflea.server.webhook_policy import Outcome, WebhookSettings, public_address
from purpleflea.store.webhooks import Webhook, WebhookStore
from purpleflea.webhook import (
    EVENT_ID_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    WEBHOOK_ID_HEADER,
    sign,
)


class RefusedAddress(Exception):
    """A target host that resolves to a non-public address (the message names them)."""


class PublicOnly(httpcore.AsyncNetworkBackend):
    """Opens connections to public addresses only, and to the very addresses it checked: the
    host is resolved once per connection, every address it has must be public, and the
    socket is opened to one of those. Checking a lookup and then letting the HTTP client
    look the name up again let a name answer a public address to the check and 127.0.0.1 to
    the connection (DNS rebinding): the delivery reached a loopback receiver. TLS still
    verifies the certificate against the name (the pool hands the name to ``start_tls``)."""

    def __init__(self, inner: httpcore.AsyncNetworkBackend | None = None) -> None:
        self._inner = inner if inner is not None else httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(
                host, port, type=socket.SOCK_STREAM
            )
        except OSError as exc:  # may be temporary: retried like a connection error
            raise httpcore.ConnectError(f"cannot resolve {host!r}: {exc}") from None
        addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
        private = sorted(a for a in addresses if not public_address(a))
        if private:
            raise RefusedAddress(
                f"refused: {host!r} resolves to non-public address(es) {', '.join(private)}"
            )
        failure: Exception = httpcore.ConnectError(f"{host!r} resolves to no address")
        for address in addresses:
            try:
                return await self._inner.connect_tcp(
                    address,
                    port,
                    timeout=timeout,
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                failure = exc
        raise failure

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise RefusedAddress(f"refused: unix socket {path!r}")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


def _connect_through(transport: httpx.AsyncHTTPTransport, backend: PublicOnly) -> None:
    """Make ``transport``'s connection pool open its connections through ``backend``. httpx
    takes no network backend, so it is set on the pool httpx made; an httpx whose transport
    is built otherwise fails here, loudly, rather than deliver unchecked."""
    pool = getattr(transport, "_pool", None)
    if not isinstance(pool, httpcore.AsyncConnectionPool) or not hasattr(pool, "_network_backend"):
        raise RuntimeError(
            f"httpx {httpx.__version__}: its transport has no connection pool to check "
            "webhook targets on; private targets cannot be refused"
        )
    pool._network_backend = backend


class Sender:
    """Signs and POSTs one delivery; when private targets are refused, connects only to the
    public addresses it checked (:class:`PublicOnly`; see
    :mod:`purpleflea.server.webhook_policy`)."""

    def __init__(
        self,
        settings: WebhookSettings,
        *,
        allow_private: bool,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.allow_private = allow_private
        self._clock = clock
        # No redirects (they could point anywhere) and no proxy settings from the
        # environment: a delivery goes where its URL says, or fails.
        # No cap on connections: each webhook has at most one request in flight, and a pool
        # limit would let enough hanging receivers starve every other webhook.
        transport = httpx.AsyncHTTPTransport(
            limits=httpx.Limits(max_connections=None, max_keepalive_connections=100)
        )
        if not allow_private:
            _connect_through(transport, PublicOnly())
        self._client = httpx.AsyncClient(
            transport=transport,
            timeout=settings.timeout_s,
            follow_redirects=False,
            trust_env=False,
        )
        self._deadline_s = settings.timeout_s

    async def send(self, webhook: Webhook, seq: int, body: bytes) -> Outcome:
        now = self._clock()
        timestamp = int(now)
        headers = {
            "Content-Type": "application/json",
            "User-Agent": f"purpleflea-webhooks/{purpleflea.__version__}",
            SIGNATURE_HEADER: sign(webhook.secret, timestamp, body),
            TIMESTAMP_HEADER: str(timestamp),
            EVENT_ID_HEADER: str(seq),
            WEBHOOK_ID_HEADER: webhook.id,
        }
        try:
            # httpx's timeout bounds each read; this bounds the whole attempt, so a receiver
            # that trickles its answer a byte at a time cannot hold its queue forever.
            async with asyncio.timeout(self._deadline_s):
                # Streamed and never read: a receiver's answer body is not ours to download.
                async with self._client.stream(
                    "POST", webhook.url, content=body, headers=headers
                ) as response:
                    return Outcome(
                        status=response.status_code,
                        retry_after=retry_after_seconds(
                            response.headers.get("retry-after"), now=now
                        ),
                    )
        except RefusedAddress as exc:
            return Outcome(error=str(exc), refused=True)
        except (httpx.TimeoutException, TimeoutError) as exc:
            return Outcome(error=f"timeout ({type(exc).__name__})")
        except httpx.HTTPError as exc:
            return Outcome(error=f"{type(exc).__name__}: {exc}"[:500])

    async def close(self) -> None:
        await self._client.aclose()


#: Seconds one replay request sends for before it answers (``more``: call again). Each attempt
#: has its own deadline (5 s by default), so a slow receiver answering in 4.9 s kept a request
#: of 1,000 letters open for 80 minutes, long past the SDK's 10 s timeout: its user retried
#: a replay that was still sending. Budget plus one attempt stays under that timeout.
REPLAY_BUDGET_S = 3.0


async def replay_dead_letters(
    store: WebhookStore,
    sender: Sender,
    webhook: Webhook,
    *,
    limit: int,
    budget_s: float | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> dict[str, Any]:
    """Send up to ``limit`` of the webhook's dead letters again, oldest first, one attempt
    each; a delivered one is removed. Stops at the first failure (the receiver is still
    down: the rest would fail too) and says which one it was, or when ``budget_s`` (default
    :data:`REPLAY_BUDGET_S`) has gone by with letters left (``more``: true, the caller asks
    again). One letter is always tried, so asking again always makes progress."""
    budget = REPLAY_BUDGET_S if budget_s is None else budget_s
    delivered = 0
    failed: dict[str, Any] | None = None
    more = False
    started = clock()
    for letter in await store.dead_letters(webhook.id, limit=limit):
        if delivered and clock() - started >= budget:
            more = True
            break
        outcome = await sender.send(webhook, letter.seq, letter.body)
        if outcome.status is not None and 200 <= outcome.status < 300:
            await store.remove_dead_letter(webhook.id, letter.seq)
            delivered += 1
            continue
        failed = {"seq": letter.seq, "error": outcome.describe()}
        break
    remaining = await store.get(webhook.id, webhook.account)
    left = remaining.dead_letters if remaining is not None else 0
    return {"delivered": delivered, "failed": failed, "remaining": left, "more": more and left > 0}
