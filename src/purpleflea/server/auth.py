"""Who may call: API key lookup, per-account rate limits, stream caps per account, and
cutting revoked keys' streams.

A key is read from ``Authorization: Bearer <key>``, ``X-API-Key: <key>`` or (for browsers'
WebSockets and EventSource, which cannot set headers) the ``api_key`` query parameter. Key
values are never logged: the access log redacts ``api_key`` (see :mod:`purpleflea.server.app`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Callable, Mapping

from purpleflea.outage import OutageRecord, describe
from purpleflea.server.keys import KeyInfo, KeyStore
from purpleflea.server.ratelimit import RateLimiter

log = logging.getLogger("purpleflea.server")


class AuthError(Exception):
    """``status`` and ``code`` for the response; the message says what to do."""

    def __init__(self, status: int, code: str, message: str, retry_after: str | None = None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.retry_after = retry_after


def key_from(headers: Mapping[str, str], query: Mapping[str, str]) -> str | None:
    """The request's key, or None when it sent none. An ``Authorization`` header that is our
    key without its ``Bearer`` scheme (``pf_...``, ``Token pf_...``), or ``Bearer`` with no
    key, is refused with what to send (:class:`AuthError`): read as no key, it was told "an
    API key is required", and ``POST /v1/keys`` registered a new account where it meant to
    mint a key for its own. Other schemes (a proxy's ``Basic``) are not ours: left alone."""
    authorization = headers.get("authorization", "").strip()
    scheme, _, credentials = authorization.partition(" ")
    credentials = credentials.strip()
    if scheme.lower() == "bearer":
        if not credentials:
            raise AuthError(401, "missing_api_key", _scheme_mistake("is 'Bearer' with no key"))
        return credentials
    other = headers.get("x-api-key") or query.get("api_key")
    if other:
        return other
    if scheme.startswith("pf_"):
        raise AuthError(401, "missing_api_key", _scheme_mistake("holds a key with no scheme"))
    if credentials.startswith("pf_"):
        said = f"holds a key under the scheme {scheme[:20]!r}, not 'Bearer'"
        raise AuthError(401, "missing_api_key", _scheme_mistake(said))
    return None


def _scheme_mistake(what: str) -> str:
    return (
        f"the Authorization header {what}: send 'Authorization: Bearer <key>' (or the key "
        "alone in X-API-Key)"
    )


class StreamRegistry:
    """Open streams, by key id (revoking a key closes them) and by account (the caps).

    Each stream registers a ``kick`` callback that ends it with a reason. An account may hold
    ``max_per_account`` streams at once and open ``opens_per_min`` a minute (a burst may use
    a minute's worth at once, as every client of an account does when a server restarts):
    limits per account, because keys are free to mint.
    """

    def __init__(
        self,
        *,
        max_per_account: int = 20,
        opens_per_min: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_per_account = max_per_account
        self.opens_per_min = opens_per_min
        self._opens = RateLimiter(opens_per_min / 60.0, max(1.0, opens_per_min), clock=clock)
        self._by_key: dict[str, set[Callable[[str], None]]] = defaultdict(set)
        self._by_account: Counter[str] = Counter()
        self._open: dict[Callable[[str], None], KeyInfo] = {}

    def add(self, info: KeyInfo, kick: Callable[[str], None]) -> None:
        """Register a stream, or raise :class:`AuthError` (429) when its account is at its
        cap of open streams (``too_many_streams``) or of opens per minute (``rate_limited``)."""
        account = info.account
        if self._by_account[account] >= self.max_per_account:
            raise AuthError(
                429,
                "too_many_streams",
                f"account {account!r} already has {self.max_per_account} open streams (the "
                "limit per account); close one before opening another",
                # A slot frees only when one of the account's streams closes, which nobody
                # can predict: a few seconds keeps a retrying client from hammering.
                retry_after="5",
            )
        wait = self._opens.acquire(account)
        if wait > 0:
            raise AuthError(
                429,
                "rate_limited",
                f"account {account!r} opened more than {self.opens_per_min:g} streams in a "
                f"minute; retry after {RateLimiter.wait_text(wait)}",
                retry_after=RateLimiter.retry_after_header(wait),
            )
        self._by_key[info.key_id].add(kick)
        self._by_account[account] += 1
        self._open[kick] = info

    def remove(self, kick: Callable[[str], None]) -> None:
        info = self._open.pop(kick, None)
        if info is None:
            return
        streams = self._by_key.get(info.key_id)
        if streams is not None:
            streams.discard(kick)
            if not streams:
                del self._by_key[info.key_id]
        self._by_account[info.account] -= 1
        if self._by_account[info.account] <= 0:
            del self._by_account[info.account]

    def kick(self, key_id: str, reason: str) -> int:
        """End every stream of ``key_id``; each stays counted until it has closed."""
        streams = tuple(self._by_key.get(key_id, ()))
        for kick in streams:
            kick(reason)
        return len(streams)

    def kick_all(self, reason: str) -> int:
        streams = tuple(self._open)
        for kick in streams:
            kick(reason)
        return len(streams)

    def open_for(self, account: str) -> int:
        return self._by_account.get(account, 0)

    def __len__(self) -> int:
        return len(self._open)


#: REST requests of one account that run at once; more wait their turn (the rate limit is
#: checked when a request's turn comes, so the charge for a large answer applies to the
#: requests queued behind it). A burst of 16 requests for 30 MB aggregates from one new
#: account ran together: 89.5 s of CPU, the server at 5.5 GB RSS, another account's stream
#: stalled 9.3 s.
REQUESTS_AT_ONCE = 2
#: REST requests of one account that may wait for their turn; beyond, refused (429).
REQUESTS_WAITING = 40

#: The answer size one request of the rate limit pays for: the largest bounded page fits (1,000
#: events are ~290 KB, 1,000 cascades ~600 KB), so paging history costs what it always did.
FREE_ANSWER_BYTES = 1_048_576
#: Beyond :data:`FREE_ANSWER_BYTES`, each further 64 KiB of a REST answer counts as one more
#: request of its account: only unbounded answers (long aggregates) pay for their size.
BYTES_PER_REQUEST = 65_536


#: The time one request of the rate limit pays for: every page, every bounded query, fits.
#: Wall time is charged only where a database server does the reads' work, unseen by the CPU
#: charge (``Store.reads_metered`` False: PostgreSQL); with SQLite, CPU and size are charged.
FREE_REQUEST_S = 1.0
#: Beyond :data:`FREE_REQUEST_S`, each further 25 ms a REST request runs counts as one more
#: request of its account: a second of work costs 40 requests, four seconds of the default
#: refill, so an account's long requests keep at most a quarter of a core busy. Small answers
#: can take seconds (a year's daily aggregate by side on a 3M-event store: 132 KB, 4.8 s of
#: CPU each time), and two of them ran at once, back to back, within the rate.
SECONDS_PER_REQUEST = 0.025

#: The server CPU one request of the rate limit pays for (its steps on the event loop and its
#: store reads, :mod:`purpleflea.cputime`): a page of 1,000 events takes ~4 ms, a first
#: request on a cold reader thread more; 50 ms leaves room for both.
FREE_CPU_S = 0.05
#: Beyond :data:`FREE_CPU_S`, each further 25 ms of CPU a REST request uses counts as one more
#: request of its account, in proportion: at the default 10 requests/s an account's costly
#: requests keep at most a quarter of a core busy (half a core for requests just under
#: :data:`FREE_CPU_S`). Wall time alone was charged, past a second: an account repeated the
#: costliest request that stayed under it, two at once, each charged as one.
CPU_S_PER_REQUEST = 0.025


class Gate:
    """Authenticates requests and applies the per-account rate limit."""

    def __init__(
        self, keys: KeyStore, limiter: RateLimiter, streams: StreamRegistry | None = None
    ) -> None:
        self.keys = keys
        self.limiter = limiter
        self.streams = streams if streams is not None else StreamRegistry()
        self.counters: dict[str, int] = defaultdict(int)
        #: Per account: its requests running or waiting, and the turns they take.
        self._lanes: dict[str, tuple[int, asyncio.Semaphore]] = {}
        # Verified keys are cached briefly so a burst of requests costs one lookup; a
        # revocation evicts its key at once (and the poll below catches other processes').
        self._cache: dict[str, KeyInfo] = {}
        #: The revocation poll's outage (the shared key store away): its log lines, its health.
        self._poll = OutageRecord()

    def request_key(self, headers: Mapping[str, str], query: Mapping[str, str]) -> str | None:
        """:func:`key_from`, its refusals counted (``malformed_authorization``)."""
        try:
            return key_from(headers, query)
        except AuthError:
            self.counters["malformed_authorization"] += 1
            raise

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
                f"{RateLimiter.wait_text(wait)}",
                retry_after=RateLimiter.retry_after_header(wait),
            )

    @contextlib.asynccontextmanager
    async def turn(self, info: KeyInfo) -> AsyncIterator[None]:
        """Wait until fewer than :data:`REQUESTS_AT_ONCE` requests of the key's account run,
        then charge this one to the rate limit (:meth:`limit`) and run it. More than
        :data:`REQUESTS_WAITING` waiting: refused at once (429)."""
        account = info.account
        users, turns = self._lanes.get(account, (0, None))
        if turns is None:
            turns = asyncio.Semaphore(REQUESTS_AT_ONCE)
        if users >= REQUESTS_AT_ONCE + REQUESTS_WAITING:
            self.counters["rate_limited"] += 1
            raise AuthError(
                429,
                "rate_limited",
                f"{users} requests of account {account!r} are running or waiting (at most "
                f"{REQUESTS_AT_ONCE} run at once, {REQUESTS_WAITING} wait); retry after 1 s",
                retry_after="1",
            )
        self._lanes[account] = (users + 1, turns)
        try:
            async with turns:
                self.limit(info)
                yield
        finally:
            left = self._lanes[account][0] - 1
            if left:
                self._lanes[account] = (left, turns)
            else:
                del self._lanes[account]

    async def pace(self, info: KeyInfo) -> None:
        """Wait until the key's account may make one more request, then charge it: what a
        stream's replay pays for each page of history it reads (``feed.client_feed``), as a
        REST client paging through it would. The replay was free: one ``since_seq: 0`` with
        a filter that matches nothing read the whole store for nothing sent (1.4-1.7 s of CPU
        per 200k events, decoded on the event loop), 60 streams a minute per account."""
        await self.limiter.take(info.account)

    def charge_work(self, info: KeyInfo, *, seconds: float | None, cpu_s: float, size: int) -> None:
        """Charge a costly request to the key's account, after it ran, for whichever it used
        most of: CPU past :data:`FREE_CPU_S`, one more request per further
        :data:`CPU_S_PER_REQUEST` (its own steps on the event loop and its store reads,
        :mod:`purpleflea.cputime`); wall time past :data:`FREE_REQUEST_S`, one per further
        :data:`SECONDS_PER_REQUEST` (what it held a turn and a reader for, a PostgreSQL
        server's work included; None: not charged, the store's reads all run on metered
        threads here, so the CPU says what the request cost and its wall time only how
        loaded the machine was); answer bytes past :data:`FREE_ANSWER_BYTES`, one per
        further :data:`BYTES_PER_REQUEST`. The rate limit counted requests alone, so one
        account at the allowed rate could ask for 30 MB aggregates back to back (3.7-9 s of
        CPU each) and stall every other account's streams for seconds; then requests just
        under a second of wall time, two at once, were each charged as one; then, at load
        10-12 in a simulated crash, the dashboard's 0.4 s-of-CPU aggregate ran 1.5-2.5 s and
        took most of a fresh account's burst of 40."""
        by_cpu = max(0.0, cpu_s - FREE_CPU_S) / CPU_S_PER_REQUEST
        by_time = (
            0.0 if seconds is None else max(0.0, seconds - FREE_REQUEST_S) // SECONDS_PER_REQUEST
        )
        by_size = max(0, size - FREE_ANSWER_BYTES) // BYTES_PER_REQUEST
        extra = max(by_cpu, by_time, by_size)
        if extra > 0:
            self.limiter.charge(info.account, extra)

    def revoked(self, key_id: str) -> int:
        """Forget a revoked key and close its streams; returns how many were closed."""
        for key, info in list(self._cache.items()):
            if info.key_id == key_id:
                del self._cache[key]
        return self.streams.kick(key_id, "key_revoked")

    async def watch_revocations(self, interval: float, now_ms: Callable[[], int]) -> None:
        """Poll the key store for revocations made by other processes (the CLI, other nodes).

        A poll that fails (the shared PostgreSQL database away) never ends the watch: it is
        logged once when polls start failing and once when they work again, named (with how
        many polls failed) by :meth:`key_store_failures` meanwhile (``/v1/health``), and the
        first poll that works catches up every revocation made since the last one that
        did. The poll runs on a thread: a database that does not answer must not stall the
        event loop every ``interval``.
        """
        since = now_ms() - 1_000
        while True:
            await asyncio.sleep(interval)
            checked = now_ms()
            try:
                revoked = await asyncio.to_thread(self.keys.revoked_since, since)
            except Exception as exc:
                self._poll_failed(exc)
                continue
            ended = self._poll.recovered()
            if ended is not None:
                log.warning(
                    "keys: revocation poll works again after %.0f s (%d failed polls); "
                    "revocations made meanwhile are applied now",
                    ended.seconds,
                    ended.failures,
                )
            for key_id in revoked:
                self.revoked(key_id)
            since = checked - 1_000  # overlap: a revocation committed mid-poll is seen twice

    def _poll_failed(self, exc: Exception) -> None:
        error = describe(exc)
        if self._poll.failed(error):
            log.error(
                "keys: revocation poll failing: %s (a key revoked meanwhile keeps working "
                "on this node until the poll works again; retrying, the next line says when "
                "it recovers)",
                error,
            )

    def key_store_failures(self) -> list[str]:
        """One line while the revocation poll fails (for ``/v1/health``), else none."""
        outage = self._poll.outage()
        if outage is None:
            return []
        return [
            f"keys: revocation poll failing for {outage.seconds:.0f} s "
            f"({outage.failures} polls): {outage.last_error}"
        ]
