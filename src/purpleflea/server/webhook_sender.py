"""Sending one webhook delivery: sign, POST to a checked address, report the
:class:`~purpleflea.server.webhook_policy.Outcome`. Used by the dispatcher (live deliveries,
on the delivering node) and by :func:`replay_dead_letters` (on whichever API node was asked).
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import httpcore
import httpx

import purpleflea
from purpleflea.clock import retry_after_seconds
from purpleflea.server.webhook_budget import DestinationBudget, destination_key
from purpleflea.server.webhook_policy import Outcome, WebhookSettings, public_address
from purpleflea.store.webhooks import Webhook, WebhookStore, target_host
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


#: What a delivery's request adds to its body, in bytes, as the byte budget counts it: the
#: request line, the URL's host and the ~300 bytes of our headers.
_REQUEST_BYTES = 320
#: Destinations remembered per webhook and per host (the address they last reached); beyond
#: this many the memory starts again (the next delivery of each learns it anew).
_REMEMBERED = 100_000


def _literal_key(host: str) -> str:
    """The destination of a URL host before any connection to it said where it goes: an IP
    literal's own; a name's is the name (``name:...``) until it is looked up."""
    try:
        return destination_key(host)
    except ValueError:
        return f"name:{host}"


#: Bytes of a receiver's answer body read at most. One read to its end leaves the connection
#: to the pool for the next delivery; unread, httpcore closed it: every delivery opened a new
#: TCP (and TLS) connection, ~1.8x the CPU of a plain http delivery, and left a socket in
#: TIME_WAIT on this machine.
#: Past this the rest is not read (a receiver's answer is not ours to download) and that
#: connection is closed.
ANSWER_BYTES = 16_384


async def _read_answer(response: httpx.Response) -> None:
    """Read ``response``'s body to its end if it is short (see :data:`ANSWER_BYTES`)."""
    read = 0
    async for chunk in response.aiter_raw():
        read += len(chunk)
        if read > ANSWER_BYTES:
            return


def _remember(memory: dict[str, str], key: str, destination: str) -> None:
    """``memory[key] = destination``, the memory starting again past :data:`_REMEMBERED`."""
    if len(memory) >= _REMEMBERED and key not in memory:
        memory.clear()
    memory[key] = destination


class Sender:
    """Signs and POSTs one delivery; when private targets are refused, connects only to the
    public addresses it checked (:class:`PublicOnly`; see
    :mod:`purpleflea.server.webhook_policy`). Every delivery first takes its turn in the
    destination's budget (:mod:`purpleflea.server.webhook_budget`), shared by the live
    deliveries and the replays sent through this sender.

    The destination is known for sure only once a connection is open (a name may resolve to
    anything, and a kept-alive connection goes on to the address it was opened to), so a
    delivery waits on the destination its webhook's previous delivery reached (for a first
    one: another webhook's to the same host, else the address the name is looked up to, once
    per host), and is charged, after it went, to the address its connection reached if that
    was another. A name that flips its
    answer between deliveries therefore gets at most one delivery per webhook past the wait
    (its next one waits for the address it really reached)."""

    def __init__(
        self,
        settings: WebhookSettings,
        *,
        allow_private: bool,
        clock: Callable[[], float] = time.time,
        budget: DestinationBudget | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.allow_private = allow_private
        self._clock = clock
        self._sleep = sleep
        self.budget = budget if budget is not None else DestinationBudget(settings.budget)
        #: Budget waits (``waits``) and replayed letters not sent because their
        #: destination's budget was spent (``refused``); the seconds waited.
        self.budget_counters: Counter[str] = Counter()
        self.budget_wait_s = 0.0
        self._reached: dict[str, str] = {}  # webhook id -> destination its last delivery reached
        self._host_reached: dict[str, str] = {}  # target host -> likewise, any webhook's
        self._waiting: set[str] = set()  # webhooks whose delivery waits for its destination
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

    def destination(self, webhook: Webhook) -> str:
        """The destination ``webhook``'s next delivery is expected to reach (see above)."""
        reached = self._reached.get(webhook.id)
        if reached is not None:
            return reached
        host = target_host(webhook.url)
        return self._host_reached.get(host) or _literal_key(host)

    async def _expect(self, webhook: Webhook) -> str | None:
        """:meth:`destination`, with a name no delivery has reached yet looked up (once per
        host): a thousand names pointing at one address must not each send their first
        delivery past its budget. The connection looks the name up again (and checks it):
        should that answer differ, the delivery is charged where it really went. None when
        the lookup took longer than an attempt may (the attempt is a timeout)."""
        known = self.destination(webhook)
        if not known.startswith("name:") or not self.budget.enabled:
            return known
        host = known.removeprefix("name:")
        try:
            # Within an attempt's deadline: unbounded, a name whose DNS servers do not answer
            # held its webhook for the resolver's own timeout (10 s and more) before every
            # attempt, outside the deadline, and the connection then looked it up again.
            async with asyncio.timeout(self._deadline_s):
                infos = await asyncio.get_running_loop().getaddrinfo(
                    host, None, type=socket.SOCK_STREAM
                )
            key = destination_key(str(infos[0][4][0]))
        except TimeoutError:
            return None
        except (OSError, ValueError, IndexError):
            return known  # its connection fails alike (or says where it went)
        _remember(self._host_reached, host, key)
        return key

    def over_budget(self, webhook: Webhook) -> bool:
        """Whether the webhook's delivery waits for its destination's budget now, or its
        next one would."""
        if webhook.id in self._waiting:
            return True
        return self.budget.enabled and self.budget.wait(self.destination(webhook), 0) > 0

    def _reach(self, webhook: Webhook, expected: str, server_addr: object, size: int) -> None:
        """Record where a delivery's connection went; charge it there if not expected."""
        if not isinstance(server_addr, tuple) or not server_addr:
            return
        try:
            reached = destination_key(str(server_addr[0]))
        except ValueError:
            return
        if reached != expected:
            self.budget.charge(reached, size)
        _remember(self._reached, webhook.id, reached)
        _remember(self._host_reached, target_host(webhook.url), reached)

    async def _take_turn(
        self, webhook: Webhook, key: str, size: int, max_wait: float | None
    ) -> str | None:
        """Wait for destination ``key``'s budget; the error when it would take over
        ``max_wait`` seconds (nothing is spent then), else None."""
        budget = self.budget
        if not budget.enabled:
            return None
        if max_wait is not None:
            ahead = budget.wait(key, size)
            if ahead > max_wait:
                self.budget_counters["refused"] += 1
                return (
                    f"not sent: destination {key} is over its delivery budget "
                    f"({budget.limits.rate:g} deliveries/s, {budget.limits.bytes_per_s:g} "
                    f"bytes/s, all webhooks aimed there together); its next delivery waits "
                    f"{ahead:.1f} s"
                )
        delay = budget.reserve(key, size)
        if delay > 0:
            self.budget_counters["waits"] += 1
            self.budget_wait_s += delay
            self._waiting.add(webhook.id)
            try:
                await self._sleep(delay)
            finally:
                self._waiting.discard(webhook.id)
        return None

    async def send(
        self, webhook: Webhook, seq: int, body: bytes, *, max_wait: float | None = None
    ) -> Outcome:
        """Send one delivery, after its turn in the destination's budget (outside the
        attempt's timeout: the wait is ours, not the receiver's). With ``max_wait``, a turn
        further away than that many seconds is not waited for: the outcome says so (a replay,
        which answers a request)."""
        size = len(body) + len(webhook.url) + _REQUEST_BYTES
        expected = await self._expect(webhook)
        if expected is None:
            host = target_host(webhook.url)
            return Outcome(error=f"timeout (looking up {host!r} took over {self._deadline_s:g} s)")
        refused = await self._take_turn(webhook, expected, size, max_wait)
        if refused is not None:
            return Outcome(error=refused)
        now = self._clock()
        answered: Outcome | None = None
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
                async with self._client.stream(
                    "POST", webhook.url, content=body, headers=headers
                ) as response:
                    stream = response.extensions.get("network_stream")
                    if stream is not None:
                        self._reach(webhook, expected, stream.get_extra_info("server_addr"), size)
                    answered = Outcome(
                        status=response.status_code,
                        retry_after=retry_after_seconds(
                            response.headers.get("retry-after"), now=now
                        ),
                    )
                    await _read_answer(response)
                    return answered
        except RefusedAddress as exc:
            return Outcome(error=str(exc), refused=True)
        except (httpx.InvalidURL, ValueError) as exc:
            # A URL the client cannot use (a name IDNA cannot encode, stored before creation
            # refused it): no attempt can succeed. Raised, it ended the webhook's delivery
            # task, and the webhook went silent: nothing delivered, nothing dead-lettered.
            return Outcome(error=f"invalid url: {exc}"[:500], refused=True)
        except (httpx.TimeoutException, TimeoutError) as exc:
            # The status came: only its answer's body was slow (the connection is dropped).
            return answered or Outcome(error=f"timeout ({type(exc).__name__})")
        except httpx.HTTPError as exc:
            return answered or Outcome(error=f"{type(exc).__name__}: {exc}"[:500])

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
        # A replay answers a request: a destination whose budget is spent ends it (the
        # letters wait for a later replay) rather than hold the request open. It waits for a
        # turn only within what is left of its own budget: waiting up to the whole budget
        # for each letter, a letter started near its end waited it again before its attempt
        # (3 s + 3 s + the attempt's 5 s: past the SDK's 10 s timeout).
        left = budget - (clock() - started)
        outcome = await sender.send(webhook, letter.seq, letter.body, max_wait=max(0.0, left))
        if outcome.status is not None and 200 <= outcome.status < 300:
            await store.remove_dead_letter(webhook.id, letter.seq)
            delivered += 1
            continue
        failed = {"seq": letter.seq, "error": outcome.describe()}
        break
    remaining = await store.get(webhook.id, webhook.account)
    left = remaining.dead_letters if remaining is not None else 0
    return {"delivered": delivered, "failed": failed, "remaining": left, "more": more and left > 0}
