"""The async client: REST queries with failover, the live stream, webhooks."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable, Sequence
from typing import Any, Literal, overload
from urllib.parse import quote

import httpx
import msgspec

from purpleflea.client._config import (
    PLACEHOLDER_KEY,
    Names,
    Time,
    as_json_number,
    as_list,
    as_ms,
    one_of,
    recorded_elsewhere,
    resolve_key,
    seconds,
    server_urls,
    ws_url,
)
from purpleflea.client.errors import (
    AuthenticationError,
    BadRequestError,
    RateLimitError,
    ServerUnreachableError,
    raise_for_response,
)
from purpleflea.client.stream import Stream
from purpleflea.client.types import Bucket, Coverage, HistoryOrder, HistoryPage
from purpleflea.model import MARKETS_LISTED, CascadeAlert, Heatmap, Liquidation
from purpleflea.positions import MeasuredMap

_page = msgspec.json.Decoder(HistoryPage)
#: Seconds a GET waits in all for the server's rate limit (``Retry-After``) before it raises
#: :class:`RateLimitError`.
RATE_LIMIT_WAIT_S = 5.0
#: The shortest wait between a rate-limit refusal and the next try (the server's
#: ``Retry-After`` is never under a second).
RATE_LIMIT_FLOOR_S = 1.0
#: history_all's page: the server's largest (``GET /v1/liquidations``' ``limit``), as each
#: request counts against the account's rate limit.
HISTORY_ALL_PAGE = 1000
#: What to do when no server answers (the MCP server says where its URL is set instead).
UNREACHABLE_TODO = "start one with `purpleflea serve`, or set PURPLEFLEA_URL"
#: What to do when the server took the request and did not answer in time (the MCP server,
#: whose agent has no timeout to pass, says what it can do instead).
TIMEOUT_TODO = "it may be overloaded; retry, or pass a larger timeout="
#: What to do when a request that changes something may have been done unanswered.
_CHANGED_TODO = "it may still have done it: list what is there (webhooks()) before you retry"


async def _request(http: httpx.AsyncClient, method: str, url: str, **sent: Any) -> httpx.Response:
    """Send one request; a GET is asked once more on a new connection when the connection
    ended without an answer: a server closes a kept connection idle for its keep-alive
    (uvicorn: 5 s, httpx keeps one as long) as the client reuses it, and the request is read
    by nobody. A GET changes nothing, so asking it again is safe (RFC 9112 9.3.1); it was
    reported as no server answering. Any other method is sent once: the server may have
    done it before the connection ended."""
    try:
        return await http.request(method, url, **sent)
    except (httpx.RemoteProtocolError, httpx.ReadError):
        if method != "GET":
            raise
        return await http.request(method, url, **sent)


def _unreachable(
    exc: httpx.TransportError, servers: Sequence[str], timeout: float, *, changes: bool = False
) -> ServerUnreachableError:
    """The SDK's error for a request no server answered, naming the servers tried and what
    to do; httpx says only "All connection attempts failed" (or nothing, for a timeout).
    ``changes``: the request changes something (a webhook's create or delete), which a server
    that did not answer in time may still have done, so a blind retry could do it twice."""
    names = ", ".join(servers)
    if changes and isinstance(exc, (httpx.RemoteProtocolError, httpx.ReadError)):
        # The request was sent and the connection ended before the answer: not a server
        # that is not there (a kept connection its keep-alive closed as the request came).
        return ServerUnreachableError(
            f"the connection to the Purple Flea server at {names} ended without an answer "
            f"({exc or type(exc).__name__}): {_CHANGED_TODO}",
            "unreachable",
        )
    if isinstance(exc, httpx.TimeoutException) and not isinstance(exc, httpx.ConnectTimeout):
        todo = _CHANGED_TODO if changes else TIMEOUT_TODO
        return ServerUnreachableError(
            f"the Purple Flea server at {names} did not answer within {timeout:g} s "
            f"({type(exc).__name__}): {todo}",
            "timeout",
        )
    return ServerUnreachableError(
        f"no Purple Flea server answers at {names} ({exc or type(exc).__name__}): "
        f"{UNREACHABLE_TODO}{recorded_elsewhere(servers)}",
        "unreachable",
    )


class LiquidationClient:
    """Async client of a Purple Flea server.

    ``api_key`` defaults to ``$PURPLEFLEA_API_KEY`` (the example placeholder ``"YOUR_KEY"``
    counts as not given); ``base_url`` to ``$PURPLEFLEA_URL``, else ``http://127.0.0.1:8000``.
    Several servers (a list, or comma-separated) are tried in order: ``base_url`` is the one
    in use, ``servers`` all of them.
    """

    def __init__(
        self,
        api_key: str | None = None,
        base_url: str | Sequence[str] | None = None,
        *,
        timeout: float = 10.0,
    ) -> None:
        self.api_key = resolve_key(api_key)
        #: The product page's api_key="YOUR_KEY" was given: a missing key says so.
        self._placeholder = api_key is not None and api_key.strip() == PLACEHOLDER_KEY
        self.servers = server_urls(base_url)
        self._current = 0
        self.timeout = seconds(timeout, "timeout")
        self._http: httpx.AsyncClient | None = None
        self._http_loop: asyncio.AbstractEventLoop | None = None

    @property
    def base_url(self) -> str:
        """The server in use (the first of ``servers`` until one failed)."""
        return self.servers[self._current]

    @property
    def ws_url(self) -> str:
        """The stream's WebSocket URL on the server in use."""
        return ws_url(self.base_url)

    def auth_headers(self) -> dict[str, str]:
        """The ``Authorization`` header; raises :class:`AuthenticationError` without a key."""
        if not self.api_key:
            get = "get a free key with `purpleflea keys create` or POST /v1/keys"
            if self._placeholder:
                raise AuthenticationError(
                    f'api_key="{PLACEHOLDER_KEY}" is the example\'s placeholder: it means the '
                    "key in PURPLEFLEA_API_KEY, which is not set: run the program as "
                    f"`PURPLEFLEA_API_KEY=<key> python ...` or pass api_key='pf_...' ({get})",
                    "missing_api_key",
                )
            raise AuthenticationError(
                f"no API key: pass api_key=... or set PURPLEFLEA_API_KEY ({get})",
                "missing_api_key",
            )
        if not self.api_key.isascii() or not self.api_key.isprintable() or " " in self.api_key:
            # Not sendable as a header: httpx's error would read as an unreachable server
            # and quote the key.
            raise AuthenticationError(
                "the API key has characters no key has (spaces, control or non-ASCII "
                "characters): pass the key exactly as `purpleflea keys create` printed it",
                "malformed_api_key",  # not the server's invalid_api_key: no server saw it
            )
        return {"Authorization": f"Bearer {self.api_key}"}

    def stream(
        self,
        *,
        min_usd: float = 0.0,
        markets: Names = None,
        exchanges: Names = None,
        sides: Names = None,
        coverages: Names = None,
        channels: str | Iterable[str] = ("liquidations",),
        since_seq: int | None = None,
        max_backoff: float = 10.0,
        idle_timeout: float = 35.0,
        give_up_after: float | None = None,
        market: Names = None,
        exchange: Names = None,
        side: Names = None,
    ) -> Stream:
        """A live stream filtered on the server; ``since_seq`` resumes after that seq;
        ``markets``, ``exchanges``, ``sides`` and ``coverages`` as :meth:`history`.

        It reconnects by itself (backoff up to ``max_backoff`` seconds) and resumes; each
        drop and each outage is logged as a WARNING of the ``purpleflea.client`` logger.
        ``give_up_after``: seconds without a connection after which it raises
        :class:`ServerUnreachableError` (None: retry for ever, as a long-lived agent wants).
        A server with no stream at its URL (an HTTP refusal of the handshake) passes the
        stream to the next server; once every one has refused it raises
        :class:`PurpleFleaError`."""
        seconds(max_backoff, "max_backoff")
        seconds(idle_timeout, "idle_timeout")
        if give_up_after is not None:
            seconds(give_up_after, "give_up_after")
        # batch: a busy stream arrives as few frames of many events (see server/streaming.py).
        subscription: dict[str, Any] = {
            "min_usd": as_json_number(min_usd),
            "channels": as_list(channels, "channels="),
            "batch": True,
        }
        for name, values in (
            ("markets", one_of(markets, market, "market")),
            ("exchanges", one_of(exchanges, exchange, "exchange")),
            ("sides", one_of(sides, side, "side")),
            ("coverages", as_list(coverages, "coverages=")),
        ):
            if values is not None:
                subscription[name] = values
        return Stream(
            self,
            subscription,
            since_seq=since_seq,
            max_backoff=max_backoff,
            idle_timeout=idle_timeout,
            give_up_after=give_up_after,
        )

    async def _get(self, path: str, params: dict[str, Any]) -> bytes:
        """The body of a GET of ``path``, failing over between servers; a rate-limit refusal
        is waited out while the waits add up to at most :data:`RATE_LIMIT_WAIT_S`."""
        clean = {k: v for k, v in params.items() if v is not None}
        headers = self.auth_headers()
        waited = 0.0
        while True:
            response = await self._get_once(path, clean, headers)
            try:
                raise_for_response(response)
            except RateLimitError as exc:
                # A burst of calls (an agent's tool asks several routes at once) meets the
                # per-account limit with a wait of a few ms: waiting beats failing the call.
                # At least the server's floor of a second: a proxy's "Retry-After: 0" made
                # the waits add up to nothing and the GET ask again at once, for ever.
                wait = max(exc.retry_after, RATE_LIMIT_FLOOR_S)
                if waited + wait > RATE_LIMIT_WAIT_S:
                    raise
                waited += wait
                await asyncio.sleep(wait)
                continue
            return response.content

    def _http_client(self) -> httpx.AsyncClient:
        """The HTTP client of the running event loop. httpx's connections belong to the loop
        that opened them: a module-level client (as in the README) used by a second
        ``asyncio.run()`` failed with "Event loop is closed"."""
        loop = asyncio.get_running_loop()
        if self._http is None or self._http_loop not in (None, loop):
            self._http = httpx.AsyncClient(timeout=self.timeout)
        self._http_loop = loop
        return self._http

    async def _get_once(
        self, path: str, params: dict[str, Any], headers: dict[str, str]
    ) -> httpx.Response:
        http = self._http_client()
        for tried in range(1, len(self.servers) + 1):
            try:
                return await _request(
                    http, "GET", self.base_url + path, params=params, headers=headers
                )
            except httpx.TransportError as exc:  # unreachable: a GET may ask the next server
                if tried == len(self.servers):
                    raise _unreachable(exc, self.servers, self.timeout) from exc
                self._current = (self._current + 1) % len(self.servers)
        raise AssertionError("unreachable: the loop returns or raises")

    async def history(
        self,
        *,
        markets: Names = None,
        exchanges: Names = None,
        sides: Names = None,
        coverages: Names = None,
        min_usd: float | None = None,
        start: Time = None,
        end: Time = None,
        cursor: int | str | None = None,
        limit: int = 100,
        market: Names = None,
        exchange: Names = None,
        side: Names = None,
        order: HistoryOrder = "seq",
    ) -> HistoryPage:
        """One page of stored events, newest first; ``start``/``end`` bound ``ts`` (ms since the
        epoch, a float rounded, a datetime: a naive one is UTC, a date, or the commands'
        ``--start`` text: ``"2025-10-10"``, ``"2025-10-10T20:30"``, ``"6h"`` ago).

        ``markets``, ``exchanges``, ``sides`` and ``coverages`` (``complete``, ``snapshot``,
        ``sampled``: how complete the event's venue feed is) take one value or several; the
        REST spelling (``market=``, ``exchange=``, ``side=``) is accepted too.

        ``order="seq"`` (the default) is the order events were stored, the last first;
        ``order="ts"`` the latest event time first (ties by seq): an older recording imported
        after newer events, or a late feed, is stored after them but is not "the newest".
        ``cursor`` is the ``next_cursor`` of a page of the same order."""
        body = await self._get(
            "/v1/liquidations",
            {
                "market": one_of(markets, market, "market"),
                "exchange": one_of(exchanges, exchange, "exchange"),
                "side": one_of(sides, side, "side"),
                "coverage": as_list(coverages, "coverages="),
                "min_usd": min_usd,
                "start": as_ms(start, "start"),
                "end": as_ms(end, "end"),
                "cursor": cursor,
                "limit": limit,
                # Only when asked: a server older than order=ts refuses the parameter.
                "order": None if order == "seq" else order,
            },
        )
        return _page.decode(body)

    async def history_all(
        self,
        *,
        markets: Names = None,
        exchanges: Names = None,
        sides: Names = None,
        coverages: Names = None,
        min_usd: float | None = None,
        start: Time = None,
        end: Time = None,
        cursor: int | str | None = None,
        limit: int = HISTORY_ALL_PAGE,
        market: Names = None,
        exchange: Names = None,
        side: Names = None,
        order: HistoryOrder = "seq",
    ) -> AsyncIterator[Liquidation]:
        """Every stored event matching the filters (as :meth:`history`), newest first in
        ``order``, fetched ``limit`` per request as the loop goes; ``cursor`` starts after
        that page.

        ``limit`` defaults to the server's largest page (1,000, where :meth:`history` shows
        100): each request counts against the account's rate limit (10 a second by default),
        so a day of 181,564 events took 180 s in pages of 100 and 16 s in pages of 1,000."""
        wanted_markets = one_of(markets, market, "market")
        wanted_exchanges = one_of(exchanges, exchange, "exchange")
        wanted_sides = one_of(sides, side, "side")
        while True:
            page = await self.history(
                markets=wanted_markets,
                exchanges=wanted_exchanges,
                sides=wanted_sides,
                coverages=coverages,
                min_usd=min_usd,
                start=start,
                end=end,
                cursor=cursor,
                limit=limit,
                order=order,
            )
            for event in page.events:
                yield event
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    async def aggregate(
        self,
        *,
        interval: str = "1h",
        group_by: str = "market",
        markets: Names = None,
        exchanges: Names = None,
        sides: Names = None,
        coverages: Names = None,
        min_usd: float | None = None,
        start: Time = None,
        end: Time = None,
        market: Names = None,
        exchange: Names = None,
        side: Names = None,
        estimate: bool = True,
    ) -> list[Bucket]:
        """Totals per ``interval`` and group; filters as :meth:`history`. ``min_usd`` counts
        only events at least that large (the server then reads the events themselves: a
        window of at most 7 days). ``estimate=False`` asks for the measure alone (``est_*``
        repeat it, ``est_calibration`` ``none``): the open hour's estimate is the costly part
        of a recent window."""
        body = await self._get(
            "/v1/liquidations/aggregate",
            {
                "interval": interval,
                "group_by": group_by,
                "market": one_of(markets, market, "market"),
                "exchange": one_of(exchanges, exchange, "exchange"),
                "side": one_of(sides, side, "side"),
                "coverage": as_list(coverages, "coverages="),
                "min_usd": min_usd,
                "start": as_ms(start, "start"),
                "end": as_ms(end, "end"),
                "estimate": None if estimate else "false",
            },
        )
        return msgspec.convert(msgspec.json.decode(body)["buckets"], list[Bucket])

    async def coverage(
        self,
        *,
        exchanges: Names = None,
        start: Time = None,
        end: Time = None,
        exchange: Names = None,
    ) -> Coverage:
        """Uptime and pressure per exchange and hour, and the gaps, in ``[start, end)``
        (default: the last 24 h)."""
        body = await self._get(
            "/v1/coverage",
            {
                "exchange": one_of(exchanges, exchange, "exchange"),
                "start": as_ms(start, "start"),
                "end": as_ms(end, "end"),
            },
        )
        return msgspec.json.decode(body, type=Coverage)

    async def markets(self) -> list[dict[str, Any]]:
        """The markets seen, with their 24 h totals and last price."""
        body = await self._get("/v1/markets", {})
        markets: list[dict[str, Any]] = msgspec.json.decode(body)["markets"]
        return markets

    async def cascades(
        self,
        *,
        status: str = "all",
        markets: Names = None,
        limit: int = 100,
        market: Names = None,
    ) -> list[CascadeAlert]:
        """Cascade alerts, newest first: ``status`` is ``active``, ``past`` (exhausted) or
        ``all``; ``markets`` as :meth:`history`."""
        body = await self._get(
            "/v1/cascades",
            {"status": status, "market": one_of(markets, market, "market"), "limit": limit},
        )
        return msgspec.convert(msgspec.json.decode(body)["cascades"], list[CascadeAlert])

    @overload
    async def heatmap(
        self,
        market: str,
        *,
        low: float | None = None,
        high: float | None = None,
        bucket: float | None = None,
        source: Literal["estimated"] = "estimated",
    ) -> Heatmap: ...

    @overload
    async def heatmap(
        self,
        market: str,
        *,
        low: float | None = None,
        high: float | None = None,
        bucket: float | None = None,
        source: Literal["measured"],
    ) -> MeasuredMap: ...

    async def heatmap(
        self,
        market: str,
        *,
        low: float | None = None,
        high: float | None = None,
        bucket: float | None = None,
        source: Literal["estimated", "measured"] = "estimated",
    ) -> Heatmap | MeasuredMap:
        """Notional per price bucket for longs and shorts of ``market``.

        ``source="estimated"`` (default): notional at risk with named clusters, a model from
        open interest, not expected liquidations (validation on real data: docs/heatmap.md,
        "Judged by reality"). ``source="measured"``: the sampled accounts' positions by their
        own liquidation prices, with ``coverage`` (sampled notional / both sides of open
        interest), where the server samples a venue that publishes positions. Raises
        :class:`PurpleFleaError` (404) for a market without data of that source yet."""
        return await self._heatmap(market, low=low, high=high, bucket=bucket, source=source)

    async def _heatmap(
        self,
        market: str,
        *,
        low: float | None,
        high: float | None,
        bucket: float | None,
        source: str,
    ) -> Heatmap | MeasuredMap:
        """:meth:`heatmap` for a ``source`` known only at run time (the sync client's)."""
        if source not in ("estimated", "measured"):
            # Anything else used to answer the estimated map, as if the caller had asked it.
            raise BadRequestError(
                f"source must be 'estimated' or 'measured', got {source!r}", "bad_request"
            )
        if not isinstance(market, str):
            raise TypeError(
                f"market must be a market name such as 'BTC-PERP', got {market!r} "
                f"({type(market).__name__})"
            )
        if not market.strip():
            # GET /v1/heatmap/ is no route: the server's 404 blamed the URL given.
            raise BadRequestError(
                f"no market given: name one such as BTC-PERP ({MARKETS_LISTED})", "bad_request"
            )
        if "/" in market:
            # The server decodes %2F before routing: "BTC/USDT" would miss the route and read
            # as a wrong server URL rather than a wrong market.
            raise BadRequestError(
                f"market {market!r} is not a market name: markets are named like BTC-PERP "
                f"({MARKETS_LISTED})",
                "bad_request",
            )
        # Quoted: "?" or "#" in a market would otherwise end the path.
        path = f"/v1/heatmap/{quote(market, safe='')}"
        params: dict[str, Any] = {"low": low, "high": high, "bucket": bucket}
        if source == "measured":
            params["source"] = source
            body = await self._get(path, params)
            return msgspec.json.decode(body, type=MeasuredMap)
        body = await self._get(path, params)
        return msgspec.json.decode(body, type=Heatmap)

    # -- webhooks (docs/webhooks.md) ----------------------------------------------------------

    async def _call(
        self,
        method: str,
        path: str,
        *,
        body: dict[str, Any] | None = None,
        limit: int | None = None,
    ) -> Any:
        """A request that changes something: sent to the current server only (repeating a
        create elsewhere could make it twice); the decoded JSON answer. ``limit`` is sent
        whenever given: a 0 left out read as the route's default, 100."""
        try:
            response = await _request(
                self._http_client(),
                method,
                self.base_url + path,
                json=body,
                params=None if limit is None else {"limit": limit},
                headers=self.auth_headers(),
            )
        except httpx.TransportError as exc:
            raise _unreachable(exc, [self.base_url], self.timeout, changes=method != "GET") from exc
        raise_for_response(response)
        return msgspec.json.decode(response.content)

    async def create_webhook(
        self,
        url: str,
        *,
        secret: str | None = None,
        channels: str | Iterable[str] = ("liquidations",),
        min_usd: float = 0.0,
        markets: Names = None,
        exchanges: Names = None,
        sides: Names = None,
        coverages: Names = None,
        market: Names = None,
        exchange: Names = None,
        side: Names = None,
    ) -> dict[str, Any]:
        """Have the server POST every item matching these stream filters to ``url``, signed
        with ``secret`` (generated when None); the filters as :meth:`stream`'s. The answer
        holds the webhook's ``id`` and its ``secret``, shown this once; check deliveries with
        :func:`purpleflea.verify_webhook`."""
        body: dict[str, Any] = {
            "url": url,
            "channels": as_list(channels, "channels="),
            "min_usd": as_json_number(min_usd),
        }
        for name, value in (
            ("secret", secret),
            ("markets", one_of(markets, market, "market")),
            ("exchanges", one_of(exchanges, exchange, "exchange")),
            ("sides", one_of(sides, side, "side")),
            ("coverages", as_list(coverages, "coverages=")),
        ):
            if value is not None:
                body[name] = value
        made: dict[str, Any] = await self._call("POST", "/v1/webhooks", body=body)
        return made

    async def webhooks(self) -> list[dict[str, Any]]:
        """This account's webhooks (without their secrets)."""
        listed: list[dict[str, Any]] = (await self._call("GET", "/v1/webhooks"))["webhooks"]
        return listed

    async def delete_webhook(self, webhook_id: str) -> None:
        """Stop and remove the webhook ``webhook_id``."""
        await self._call("DELETE", f"/v1/webhooks/{webhook_id}")

    async def dead_letters(self, webhook_id: str, *, limit: int = 100) -> dict[str, Any]:
        """Deliveries to ``webhook_id`` that failed every attempt, oldest first."""
        letters: dict[str, Any] = await self._call(
            "GET", f"/v1/webhooks/{webhook_id}/dead-letters", limit=limit
        )
        return letters

    async def replay_dead_letters(self, webhook_id: str, *, limit: int = 100) -> dict[str, Any]:
        """Send up to ``limit`` dead letters again, oldest first, until one fails; ``delivered``,
        ``failed`` (the one that failed, or None) and ``remaining``. The server answers every
        few seconds (``more``: letters left, no failure): this asks again until it is done."""
        path = f"/v1/webhooks/{webhook_id}/dead-letters/replay"
        result: dict[str, Any] = await self._call("POST", path, limit=limit)
        delivered = result["delivered"]
        while result.get("more") and result["delivered"] and delivered < limit:
            result = await self._call("POST", path, limit=limit - delivered)
            delivered += result["delivered"]
        return {**result, "delivered": delivered}

    async def aclose(self) -> None:
        """Close the HTTP connections (streams close on their own ``async with``)."""
        if self._http is not None and self._http_loop is asyncio.get_running_loop():
            await self._http.aclose()
        self._http = None

    async def __aenter__(self) -> LiquidationClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
