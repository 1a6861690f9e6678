"""Sending one webhook delivery: resolve-and-check the target, sign, POST, report the
:class:`~purpleflea.server.webhook_policy.Outcome`. Used by the dispatcher (live deliveries,
on the delivering node) and by :func:`replay_dead_letters` (on whichever API node was asked).
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

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


class Sender:
    """Signs and POSTs one delivery; first checks where the target's host resolves when
    private targets are refused (see :mod:`purpleflea.server.webhook_policy`)."""

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
        self._client = httpx.AsyncClient(
            timeout=settings.timeout_s,
            follow_redirects=False,
            trust_env=False,
            limits=httpx.Limits(max_connections=None, max_keepalive_connections=100),
        )
        self._deadline_s = settings.timeout_s

    async def _refusal(self, url: str) -> Outcome | None:
        """Why ``url`` may not be contacted now (an outcome without a status), or None."""
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port or (443 if parts.scheme == "https" else 80)
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(
                host, port, type=socket.SOCK_STREAM
            )
        except OSError as exc:
            return Outcome(error=f"cannot resolve {host!r}: {exc}")  # may be temporary
        private = sorted({str(info[4][0]) for info in infos if not public_address(str(info[4][0]))})
        if private:
            return Outcome(
                error=f"refused: {host!r} resolves to non-public address(es) {', '.join(private)}",
                refused=True,
            )
        return None

    async def send(self, webhook: Webhook, seq: int, body: bytes) -> Outcome:
        if not self.allow_private:
            refusal = await self._refusal(webhook.url)
            if refusal is not None:
                return refusal
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
        except (httpx.TimeoutException, TimeoutError) as exc:
            return Outcome(error=f"timeout ({type(exc).__name__})")
        except httpx.HTTPError as exc:
            return Outcome(error=f"{type(exc).__name__}: {exc}"[:500])

    async def close(self) -> None:
        await self._client.aclose()


async def replay_dead_letters(
    store: WebhookStore, sender: Sender, webhook: Webhook, *, limit: int
) -> dict[str, Any]:
    """Send up to ``limit`` of the webhook's dead letters again, oldest first, one attempt
    each; a delivered one is removed. Stops at the first failure (the receiver is still
    down: the rest would fail too) and says which one it was."""
    delivered = 0
    failed: dict[str, Any] | None = None
    for letter in await store.dead_letters(webhook.id, limit=limit):
        outcome = await sender.send(webhook, letter.seq, letter.body)
        if outcome.status is not None and 200 <= outcome.status < 300:
            await store.remove_dead_letter(webhook.id, letter.seq)
            delivered += 1
            continue
        failed = {"seq": letter.seq, "error": outcome.describe()}
        break
    remaining = await store.get(webhook.id, webhook.account)
    return {
        "delivered": delivered,
        "failed": failed,
        "remaining": remaining.dead_letters if remaining is not None else 0,
    }
