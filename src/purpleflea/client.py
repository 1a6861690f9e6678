"""The Purple Flea SDK: stream liquidations and cascades, query history, aggregates, markets.

Quick start (the server address and key come from ``PURPLEFLEA_URL`` and
``PURPLEFLEA_API_KEY`` when not passed)::

    import asyncio

    import purpleflea

    liq = purpleflea.LiquidationClient(api_key="pf_...")


    async def main() -> None:
        async with liq.stream(min_usd=100_000) as stream:
            async for event in stream:
                print(event["side"], event["size_usd"], event["market"], event["cascade_score"])


    asyncio.run(main())

The stream reconnects by itself (exponential backoff with jitter) and resumes from the last
``seq`` it saw, so a dropped connection or a server restart costs no event and repeats none.
Given several servers (API nodes of one deployment: a list, or commas in ``base_url`` or
``PURPLEFLEA_URL``), it moves to the next one when its server is unreachable and resumes there
(their seqs are one sequence); REST calls fail over the same way.
Errors that retrying cannot fix (a bad key, a revoked key, a bad filter) raise
:class:`PurpleFleaError` subclasses instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import threading
from collections.abc import AsyncIterator, Iterable, Iterator, Sequence
from types import TracebackType
from typing import Any, Literal, overload

import httpx
import msgspec
import websockets
from websockets.asyncio.client import ClientConnection, connect

from purpleflea.model import CascadeAlert, Heatmap, Liquidation
from purpleflea.positions import MeasuredMap

DEFAULT_URL = "http://127.0.0.1:8000"
#: The key the product page's example passes; it means "take the key from the environment".
PLACEHOLDER_KEY = "YOUR_KEY"

__all__ = [
    "AuthenticationError",
    "BadRequestError",
    "LiquidationClient",
    "PurpleFleaError",
    "RateLimitError",
    "Stream",
    "SyncLiquidationClient",
]


class PurpleFleaError(Exception):
    """An error the server reported (``code``) or the client detected."""

    def __init__(self, message: str, code: str = "error", status: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.status = status


class AuthenticationError(PurpleFleaError):
    """Missing, invalid or revoked API key."""


class BadRequestError(PurpleFleaError):
    """A parameter or stream filter the server rejected; the message says which."""


class RateLimitError(PurpleFleaError):
    """Too many requests; ``retry_after`` says how long to wait (seconds)."""

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message, "rate_limited", 429)
        self.retry_after = retry_after


class HistoryPage(msgspec.Struct, frozen=True):
    """One page of history, newest first; pass ``next_cursor`` as ``cursor`` for the next."""

    events: list[Liquidation]
    next_cursor: int | None


class Bucket(msgspec.Struct, frozen=True):
    start_ms: int
    group: str
    count: int
    size_usd: float
    long_usd: float
    short_usd: float
    #: Measured plus what throttled (snapshot) feeds are estimated to have hidden (0 from a
    #: server older than the estimate).
    est_count: int = 0
    est_size_usd: float = 0.0


class CoverageHour(msgspec.Struct, frozen=True):
    """One exchange's UTC hour: the share of it its connections were up and, for snapshot
    venues, ``pressure``: the share of symbol-seconds that carried an event."""

    exchange: str
    hour: int
    uptime: float
    up_s: float
    connections: int
    symbol_seconds: int | None
    symbols: int | None
    pressure: float | None


class CoverageGap(msgspec.Struct, frozen=True):
    """A window a connection missed; ``repair`` is ``repaired`` (``repaired_events`` fetched
    from the venue's REST history), ``open`` (``note`` says why) or ``pending``."""

    id: str
    exchange: str
    connection: str
    start: int
    end: int | None
    reason: str
    repair: str
    repaired_events: int
    note: str


class Coverage(msgspec.Struct, frozen=True):
    start: int
    end: int
    hours: list[CoverageHour]
    gaps: list[CoverageGap]


class _Frame(msgspec.Struct):
    type: str
    data: msgspec.Raw = msgspec.Raw(b"")
    seq: int | None = None
    code: str = ""
    message: str = ""
    items: list[msgspec.Raw] = []


_frame = msgspec.json.Decoder(_Frame)
_liquidation = msgspec.json.Decoder(Liquidation)
_cascade = msgspec.json.Decoder(CascadeAlert)
_page = msgspec.json.Decoder(HistoryPage)

_FATAL = {
    "missing_api_key": AuthenticationError,
    "invalid_api_key": AuthenticationError,
    "key_revoked": AuthenticationError,
    "bad_subscription": BadRequestError,
}


def _resolve_key(api_key: str | None) -> str | None:
    if api_key and api_key != PLACEHOLDER_KEY:
        return api_key
    return os.environ.get("PURPLEFLEA_API_KEY") or None


def _list(values: str | Iterable[str] | None) -> list[str] | None:
    if values is None:
        return None
    return [values] if isinstance(values, str) else list(values)


Names = str | Iterable[str] | None


def _one_of(plural: Names, singular: Names, name: str) -> list[str] | None:
    """A filter given as ``markets=`` (documented) or ``market=`` (REST's and the CLI's
    spelling, accepted too), never both."""
    if singular is not None and plural is not None:
        raise TypeError(f"pass {name}s= or {name}=, not both")
    return _list(plural if singular is None else singular)


def _servers(base_url: str | Sequence[str] | None) -> tuple[str, ...]:
    """The server URLs ``base_url`` (or ``$PURPLEFLEA_URL``) names, in the order to try."""
    given = base_url or os.environ.get("PURPLEFLEA_URL") or DEFAULT_URL
    items = given.split(",") if isinstance(given, str) else list(given)
    urls = tuple(item.strip().rstrip("/") for item in items if item.strip())
    if not urls:
        raise ValueError(f"base_url names no server: {base_url!r}")
    for url in urls:
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"base_url must start with http:// or https://: {url!r}")
    return urls


def _ws_url(base_url: str) -> str:
    return "ws" + base_url[len("http") :] + "/v1/stream"


def _raise_for(response: httpx.Response) -> None:
    if response.status_code < 400:
        return
    try:
        error = response.json()["error"]
        code, message = str(error["code"]), str(error["message"])
    except (ValueError, KeyError, TypeError):
        code, message = "http_error", f"HTTP {response.status_code}: {response.text[:200]}"
    if response.status_code == 429:
        raise RateLimitError(message, float(response.headers.get("retry-after", "1")))
    if response.status_code in (401, 403):
        raise AuthenticationError(message, code, response.status_code)
    if response.status_code == 400:
        raise BadRequestError(message, code, 400)
    raise PurpleFleaError(message, code, response.status_code)


class Stream:
    """A live, resumable stream; use as ``async with client.stream(...) as stream``.

    Iterating yields :class:`~purpleflea.model.Liquidation` events (and
    :class:`~purpleflea.model.CascadeAlert` alerts when the ``cascades`` channel is asked
    for). ``last_seq`` is the resume cursor: everything up to it was delivered or filtered.
    ``server`` is the server it is (or will next be) connected to.
    """

    def __init__(
        self,
        client: LiquidationClient,
        subscription: dict[str, Any],
        *,
        since_seq: int | None,
        max_backoff: float,
        idle_timeout: float,
    ) -> None:
        self._client = client
        self._subscription = subscription
        self.last_seq: int | None = since_seq
        self.reconnects = 0
        self._max_backoff = max_backoff
        self._idle_timeout = idle_timeout
        self._ws: ClientConnection | None = None
        self._closed = False
        self._server = client.servers.index(client.base_url)

    @property
    def server(self) -> str:
        return self._client.servers[self._server]

    async def __aenter__(self) -> Stream:
        await self._connect_with_retry()
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        self._closed = True
        if self._ws is not None:
            await self._ws.close()
            self._ws = None

    def __aiter__(self) -> AsyncIterator[Liquidation | CascadeAlert]:
        return self._items()

    async def _connect(self) -> None:
        message = dict(self._subscription, op="subscribe")
        if self.last_seq is not None:
            message["since_seq"] = self.last_seq
        ws = await connect(
            _ws_url(self.server),
            additional_headers=self._client.auth_headers(),
            open_timeout=self._client.timeout,
            max_size=2**22,
        )
        try:
            # A server that refuses the connection (key, stream caps) may close it before the
            # subscribe message goes out: its error frame is still there to read.
            with contextlib.suppress(websockets.ConnectionClosed):
                await ws.send(msgspec.json.encode(message).decode())
            first = _frame.decode(await asyncio.wait_for(ws.recv(), self._client.timeout))
            if first.type == "error":
                raise _FATAL.get(first.code, PurpleFleaError)(first.message, first.code)
            if first.type != "subscribed":
                raise PurpleFleaError(f"unexpected first frame {first.type!r}", "protocol")
            if self.last_seq is None:
                self.last_seq = first.seq
        except BaseException:
            await ws.close()
            raise
        self._ws = ws

    async def _connect_with_retry(self) -> None:
        """Connect, trying each server in turn; back off after every full round."""
        servers = len(self._client.servers)
        attempt = 0
        while True:
            try:
                await self._connect()
                return
            except (AuthenticationError, BadRequestError):
                raise
            except (OSError, TimeoutError, websockets.WebSocketException, PurpleFleaError):
                if self._closed:
                    raise
                attempt += 1
                self._server = (self._server + 1) % servers
                if attempt % servers:
                    continue  # the next server may answer right away
                rounds = attempt // servers
                ceiling = min(self._max_backoff, 0.25 * 2 ** min(rounds, 10))
                await asyncio.sleep(random.uniform(ceiling / 2, ceiling))

    async def _items(self) -> AsyncIterator[Liquidation | CascadeAlert]:
        while not self._closed:
            if self._ws is None:
                self.reconnects += 1
                await self._connect_with_retry()
            assert self._ws is not None
            try:
                raw = await asyncio.wait_for(self._ws.recv(), self._idle_timeout)
            except (websockets.ConnectionClosed, TimeoutError, OSError):
                # Dropped or silent: reconnect and resume from last_seq.
                await self._drop()
                continue
            frame = _frame.decode(raw)
            if frame.type == "batch":
                for item in frame.items:
                    for event in self._item(_frame.decode(item)):
                        yield event
            elif frame.type in ("liquidation", "cascade"):
                for event in self._item(frame):
                    yield event
            elif frame.type == "heartbeat" and frame.seq is not None:
                self.last_seq = max(self.last_seq or 0, frame.seq)
            elif frame.type == "error":
                fatal = _FATAL.get(frame.code)
                await self._drop()
                if fatal is not None:
                    self._closed = True
                    raise fatal(frame.message, frame.code)
                # slow_consumer, server_shutdown: reconnect and resume.

    def _item(self, frame: _Frame) -> list[Liquidation | CascadeAlert]:
        """The event or alert a frame carries, unless already delivered (seq at or below
        the cursor); moves the cursor."""
        if not frame.data:
            return []
        item: Liquidation | CascadeAlert
        if frame.type == "liquidation":
            item = _liquidation.decode(frame.data)
        elif frame.type == "cascade":
            item = _cascade.decode(frame.data)
        else:
            return []
        if self.last_seq is not None and item.seq <= self.last_seq:
            return []
        self.last_seq = item.seq
        return [item]

    async def _drop(self) -> None:
        if self._ws is not None:
            ws, self._ws = self._ws, None
            with contextlib.suppress(OSError, websockets.WebSocketException):
                await ws.close()


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
        self.api_key = _resolve_key(api_key)
        self.servers = _servers(base_url)
        self._current = 0
        self.timeout = timeout
        self._http: httpx.AsyncClient | None = None

    @property
    def base_url(self) -> str:
        return self.servers[self._current]

    @property
    def ws_url(self) -> str:
        return _ws_url(self.base_url)

    def auth_headers(self) -> dict[str, str]:
        if not self.api_key:
            raise AuthenticationError(
                "no API key: pass api_key=... or set PURPLEFLEA_API_KEY (get a free key with "
                "`purpleflea keys create` or POST /v1/keys)",
                "missing_api_key",
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
        market: Names = None,
        exchange: Names = None,
        side: Names = None,
    ) -> Stream:
        """A live stream filtered on the server; ``since_seq`` resumes after that seq;
        ``markets``, ``exchanges``, ``sides`` and ``coverages`` as :meth:`history`."""
        # batch: a busy stream arrives as few frames of many events (see server/streaming.py).
        subscription: dict[str, Any] = {
            "min_usd": min_usd,
            "channels": _list(channels),
            "batch": True,
        }
        for name, values in (
            ("markets", _one_of(markets, market, "market")),
            ("exchanges", _one_of(exchanges, exchange, "exchange")),
            ("sides", _one_of(sides, side, "side")),
            ("coverages", _list(coverages)),
        ):
            if values is not None:
                subscription[name] = values
        return Stream(
            self,
            subscription,
            since_seq=since_seq,
            max_backoff=max_backoff,
            idle_timeout=idle_timeout,
        )

    async def _get(self, path: str, params: dict[str, Any]) -> bytes:
        if self._http is None:
            self._http = httpx.AsyncClient(timeout=self.timeout)
        clean = {k: v for k, v in params.items() if v is not None}
        headers = self.auth_headers()
        for tried in range(1, len(self.servers) + 1):
            try:
                response = await self._http.get(self.base_url + path, params=clean, headers=headers)
                break
            except httpx.TransportError:  # unreachable: a GET is safe to ask the next server
                if tried == len(self.servers):
                    raise
                self._current = (self._current + 1) % len(self.servers)
        _raise_for(response)
        return response.content

    async def history(
        self,
        *,
        markets: Names = None,
        exchanges: Names = None,
        sides: Names = None,
        coverages: Names = None,
        min_usd: float | None = None,
        start: int | None = None,
        end: int | None = None,
        cursor: int | None = None,
        limit: int = 100,
        market: Names = None,
        exchange: Names = None,
        side: Names = None,
    ) -> HistoryPage:
        """One page of stored events, newest first (times in ms since the epoch).

        ``markets``, ``exchanges``, ``sides`` and ``coverages`` (``complete``, ``snapshot``,
        ``sampled``: how complete the event's venue feed is) take one value or several; the
        REST spelling (``market=``, ``exchange=``, ``side=``) is accepted too."""
        body = await self._get(
            "/v1/liquidations",
            {
                "market": _one_of(markets, market, "market"),
                "exchange": _one_of(exchanges, exchange, "exchange"),
                "side": _one_of(sides, side, "side"),
                "coverage": _list(coverages),
                "min_usd": min_usd,
                "start": start,
                "end": end,
                "cursor": cursor,
                "limit": limit,
            },
        )
        return _page.decode(body)

    async def history_all(self, **filters: Any) -> AsyncIterator[Liquidation]:
        """Every stored event matching ``filters`` (as :meth:`history`), newest first."""
        cursor = filters.pop("cursor", None)
        while True:
            page = await self.history(cursor=cursor, **filters)
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
        start: int | None = None,
        end: int | None = None,
        market: Names = None,
        exchange: Names = None,
        side: Names = None,
    ) -> list[Bucket]:
        """Totals per ``interval`` and group; filters as :meth:`history`."""
        body = await self._get(
            "/v1/liquidations/aggregate",
            {
                "interval": interval,
                "group_by": group_by,
                "market": _one_of(markets, market, "market"),
                "exchange": _one_of(exchanges, exchange, "exchange"),
                "side": _one_of(sides, side, "side"),
                "coverage": _list(coverages),
                "start": start,
                "end": end,
            },
        )
        return msgspec.convert(msgspec.json.decode(body)["buckets"], list[Bucket])

    async def coverage(
        self,
        *,
        exchanges: Names = None,
        start: int | None = None,
        end: int | None = None,
        exchange: Names = None,
    ) -> Coverage:
        """Uptime and pressure per exchange and hour, and the gaps, in ``[start, end)``
        (default: the last 24 h)."""
        body = await self._get(
            "/v1/coverage",
            {"exchange": _one_of(exchanges, exchange, "exchange"), "start": start, "end": end},
        )
        return msgspec.json.decode(body, type=Coverage)

    async def markets(self) -> list[dict[str, Any]]:
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
            {"status": status, "market": _one_of(markets, market, "market"), "limit": limit},
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
        params: dict[str, Any] = {"low": low, "high": high, "bucket": bucket}
        if source == "measured":
            params["source"] = source
            body = await self._get(f"/v1/heatmap/{market}", params)
            return msgspec.json.decode(body, type=MeasuredMap)
        body = await self._get(f"/v1/heatmap/{market}", params)
        return msgspec.json.decode(body, type=Heatmap)

    # -- webhooks (docs/webhooks.md) ----------------------------------------------------------

    async def _call(
        self, method: str, path: str, *, body: dict[str, Any] | None = None, limit: int = 0
    ) -> Any:
        """A request that changes something: sent to the current server only (repeating a
        create elsewhere could make it twice); the decoded JSON answer."""
        if self._http is None:
            self._http = httpx.AsyncClient(timeout=self.timeout)
        response = await self._http.request(
            method,
            self.base_url + path,
            json=body,
            params={"limit": limit} if limit else None,
            headers=self.auth_headers(),
        )
        _raise_for(response)
        return msgspec.json.decode(response.content)

    async def create_webhook(
        self,
        url: str,
        *,
        secret: str | None = None,
        channels: str | Iterable[str] = ("liquidations",),
        min_usd: float = 0.0,
        markets: str | Iterable[str] | None = None,
        exchanges: str | Iterable[str] | None = None,
        sides: str | Iterable[str] | None = None,
    ) -> dict[str, Any]:
        """Have the server POST every item matching these stream filters to ``url``, signed
        with ``secret`` (generated when None). The answer holds the webhook's ``id`` and its
        ``secret``, shown this once; check deliveries with :func:`purpleflea.verify_webhook`."""
        body: dict[str, Any] = {"url": url, "channels": _list(channels), "min_usd": min_usd}
        for name, value in (
            ("secret", secret),
            ("markets", _list(markets)),
            ("exchanges", _list(exchanges)),
            ("sides", _list(sides)),
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
        await self._call("DELETE", f"/v1/webhooks/{webhook_id}")

    async def dead_letters(self, webhook_id: str, *, limit: int = 100) -> dict[str, Any]:
        """Deliveries to ``webhook_id`` that failed every attempt, oldest first."""
        letters: dict[str, Any] = await self._call(
            "GET", f"/v1/webhooks/{webhook_id}/dead-letters", limit=limit
        )
        return letters

    async def replay_dead_letters(self, webhook_id: str, *, limit: int = 100) -> dict[str, Any]:
        """Send dead letters again, oldest first, until one fails; ``delivered``, ``failed``
        (the one that failed, or None) and ``remaining``."""
        result: dict[str, Any] = await self._call(
            "POST", f"/v1/webhooks/{webhook_id}/dead-letters/replay", limit=limit
        )
        return result

    async def aclose(self) -> None:
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    async def __aenter__(self) -> LiquidationClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


class SyncLiquidationClient:
    """A blocking wrapper for scripts and notebooks: the same methods, no ``await``.

    ``stream()`` runs the async stream on a background thread and yields its items.
    """

    def __init__(
        self, api_key: str | None = None, base_url: str | Sequence[str] | None = None
    ) -> None:
        self._client = LiquidationClient(api_key, base_url)
        self._loop = asyncio.new_event_loop()
        self._lock = threading.Lock()

    def _run(self, work: Any) -> Any:
        with self._lock:
            return self._loop.run_until_complete(work)

    def history(self, **filters: Any) -> HistoryPage:
        page: HistoryPage = self._run(self._client.history(**filters))
        return page

    def history_all(
        self,
        *,
        markets: Names = None,
        exchanges: Names = None,
        sides: Names = None,
        coverages: Names = None,
        min_usd: float | None = None,
        start: int | None = None,
        end: int | None = None,
        limit: int = 100,
        market: Names = None,
        exchange: Names = None,
        side: Names = None,
    ) -> Iterator[Liquidation]:
        """Every stored event matching the filters (as :meth:`LiquidationClient.history`),
        newest first, fetched ``limit`` per request as the loop goes."""
        cursor: int | None = None
        while True:
            page = self.history(
                markets=_one_of(markets, market, "market"),
                exchanges=_one_of(exchanges, exchange, "exchange"),
                sides=_one_of(sides, side, "side"),
                coverages=coverages,
                min_usd=min_usd,
                start=start,
                end=end,
                cursor=cursor,
                limit=limit,
            )
            yield from page.events
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    def aggregate(self, **params: Any) -> list[Bucket]:
        buckets: list[Bucket] = self._run(self._client.aggregate(**params))
        return buckets

    def coverage(
        self,
        *,
        exchanges: Names = None,
        start: int | None = None,
        end: int | None = None,
        exchange: Names = None,
    ) -> Coverage:
        """See :meth:`LiquidationClient.coverage`."""
        found: Coverage = self._run(
            self._client.coverage(exchanges=exchanges, start=start, end=end, exchange=exchange)
        )
        return found

    def markets(self) -> list[dict[str, Any]]:
        markets: list[dict[str, Any]] = self._run(self._client.markets())
        return markets

    def cascades(self, **params: Any) -> list[CascadeAlert]:
        alerts: list[CascadeAlert] = self._run(self._client.cascades(**params))
        return alerts

    def stream(self, **filters: Any) -> Iterator[Liquidation | CascadeAlert]:
        """Blocking iterator over a live stream (stop it by breaking out of the loop)."""
        import queue  # noqa: PLC0415

        items: queue.Queue[Liquidation | CascadeAlert | BaseException] = queue.Queue(10_000)
        stop = threading.Event()

        async def pump() -> None:
            try:
                async with self._client.stream(**filters) as stream:
                    async for item in stream:
                        if stop.is_set():
                            return
                        items.put(item)
            except BaseException as exc:  # handed to the caller's thread
                items.put(exc)

        thread = threading.Thread(target=lambda: asyncio.run(pump()), daemon=True)
        thread.start()
        try:
            while True:
                item = items.get()
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            stop.set()

    @overload
    def heatmap(
        self, market: str, *, source: Literal["estimated"] = "estimated", **params: Any
    ) -> Heatmap: ...

    @overload
    def heatmap(
        self, market: str, *, source: Literal["measured"], **params: Any
    ) -> MeasuredMap: ...

    def heatmap(
        self, market: str, *, source: Literal["estimated", "measured"] = "estimated", **params: Any
    ) -> Heatmap | MeasuredMap:
        heatmap: Heatmap | MeasuredMap = self._run(
            self._client.heatmap(market, source=source, **params)
        )
        return heatmap

    def create_webhook(self, url: str, **filters: Any) -> dict[str, Any]:
        made: dict[str, Any] = self._run(self._client.create_webhook(url, **filters))
        return made

    def webhooks(self) -> list[dict[str, Any]]:
        listed: list[dict[str, Any]] = self._run(self._client.webhooks())
        return listed

    def delete_webhook(self, webhook_id: str) -> None:
        self._run(self._client.delete_webhook(webhook_id))

    def dead_letters(self, webhook_id: str, *, limit: int = 100) -> dict[str, Any]:
        letters: dict[str, Any] = self._run(self._client.dead_letters(webhook_id, limit=limit))
        return letters

    def replay_dead_letters(self, webhook_id: str, *, limit: int = 100) -> dict[str, Any]:
        result: dict[str, Any] = self._run(
            self._client.replay_dead_letters(webhook_id, limit=limit)
        )
        return result

    def close(self) -> None:
        self._run(self._client.aclose())
        self._loop.close()
