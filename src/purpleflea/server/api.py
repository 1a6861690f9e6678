"""The REST routes: history, aggregates, markets, cascades, keys, health and metrics."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from purpleflea.engine.heatmap_feed import HeatmapFeed
from purpleflea.server import http
from purpleflea.server.auth import AuthError, Gate, key_from
from purpleflea.server.keys import KeyInfo
from purpleflea.server.pipeline import Tracker
from purpleflea.server.ratelimit import RateLimiter
from purpleflea.store.base import INTERVAL_MS, Query, Store

Handler = Callable[[Request], Awaitable[Response]]
AuthedHandler = Callable[[Request, KeyInfo], Awaitable[Response]]
#: More ``/v1/metrics`` families: ``(name, kind, help, [(labels, value), ...])``.
MetricSource = Callable[[], list[tuple[str, str, str, list[tuple[str, float]]]]]

_DAY_MS = 86_400_000
_DEFAULT_SPAN = {"1m": 6 * 3_600_000, "1h": 7 * _DAY_MS, "1d": 365 * _DAY_MS}


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


class Api:
    """Route handlers over the tracker's store, bus state and key store."""

    def __init__(
        self,
        *,
        tracker: Tracker,
        store: Store,
        gate: Gate,
        known_exchanges: tuple[str, ...],
        health: Callable[[], dict[str, Any]],
        registrations_per_min: float,
        heatmaps: HeatmapFeed | None = None,
    ) -> None:
        self.tracker = tracker
        self.store = store
        self.gate = gate
        self.known_exchanges = known_exchanges
        self.health_info = health
        self.heatmaps = heatmaps
        self.registrations = RateLimiter(
            registrations_per_min / 60.0, max(1.0, registrations_per_min)
        )
        self.metric_sources: list[MetricSource] = []

    # -- plumbing ----------------------------------------------------------------------------

    def authed(self, handler: AuthedHandler) -> Handler:
        async def endpoint(request: Request) -> Response:
            try:
                info = self.gate.authenticate(key_from(request.headers, request.query_params))
                self.gate.limit(info)
                return await handler(request, info)
            except AuthError as exc:
                headers = {"Retry-After": exc.retry_after} if exc.retry_after else None
                if exc.status == 401:
                    headers = {"WWW-Authenticate": "Bearer"}
                return http.error_response(exc.status, exc.code, exc.message, headers)
            except http.BadRequest as exc:
                return http.error_response(400, "bad_request", str(exc))

        return endpoint

    def _query(self, request: Request, *, limit_default: int = 100) -> Query:
        params = request.query_params
        sides = http.strings(params, "side")
        for side in sides:
            if side not in ("long", "short"):
                raise http.BadRequest(f"side must be long or short, got {side!r}")
        exchanges = http.strings(params, "exchange")
        for exchange in exchanges:
            if exchange not in self.known_exchanges:
                raise http.BadRequest(
                    f"unknown exchange {exchange!r}; known: {', '.join(self.known_exchanges)}"
                )
        start = http.integer(params, "start", None)
        end = http.integer(params, "end", None)
        if start is not None and end is not None and end <= start:
            raise http.BadRequest(f"end ({end}) must be after start ({start})")
        return Query(
            markets=tuple(m.upper() for m in http.strings(params, "market")),
            exchanges=exchanges,
            sides=sides,
            min_usd=http.number(params, "min_usd", 0.0),
            start_ms=start,
            end_ms=end,
            before_seq=http.integer(params, "cursor", None, low=1),
            limit=http.integer(params, "limit", limit_default, low=1, high=1_000) or limit_default,
        )

    # -- data routes -------------------------------------------------------------------------

    async def liquidations(self, request: Request, _: KeyInfo) -> Response:
        page = await self.store.query(self._query(request))
        return http.json_response({"events": page.events, "next_cursor": page.next_cursor})

    async def aggregate(self, request: Request, _: KeyInfo) -> Response:
        params = request.query_params
        interval = http.choice(params, "interval", ("1m", "1h", "1d"), "1h")
        group_by = http.choice(params, "group_by", ("market", "exchange", "side"), "market")
        query = self._query(request)
        if query.start_ms is None:
            end = query.end_ms or _now_ms()
            # Aligned to the bucket width (at most an hour) so the rollups answer it.
            align = min(INTERVAL_MS[interval], 3_600_000)
            start = (end - _DEFAULT_SPAN[interval]) // align * align
            query = Query(
                markets=query.markets,
                exchanges=query.exchanges,
                sides=query.sides,
                min_usd=query.min_usd,
                start_ms=start,
                end_ms=query.end_ms,
            )
        buckets = await self.store.aggregate(interval, group_by, query)  # type: ignore[arg-type]
        return http.json_response({"interval": interval, "group_by": group_by, "buckets": buckets})

    async def markets(self, request: Request, _: KeyInfo) -> Response:
        now = _now_ms()
        start = (now - _DAY_MS) // 60_000 * 60_000
        rows = await self.store.aggregate("1d", "market", Query(start_ms=start))
        totals: dict[str, dict[str, Any]] = {}
        for row in rows:
            cell = totals.setdefault(
                row.group, {"count": 0, "size_usd": 0.0, "long_usd": 0.0, "short_usd": 0.0}
            )
            cell["count"] += row.count
            cell["size_usd"] += row.size_usd
            cell["long_usd"] += row.long_usd
            cell["short_usd"] += row.short_usd
        names = sorted(set(totals) | set(self.tracker.markets))
        result = []
        for name in names:
            state = self.tracker.markets.get(name)
            day = totals.get(name, {"count": 0, "size_usd": 0.0, "long_usd": 0.0, "short_usd": 0.0})
            result.append(
                {
                    "market": name,
                    "last_price": state.last_price if state else None,
                    "last_ts": state.last_ts if state else None,
                    "exchanges": sorted(state.exchanges) if state else [],
                    "events_24h": day["count"],
                    "usd_24h": day["size_usd"],
                    "long_usd_24h": day["long_usd"],
                    "short_usd_24h": day["short_usd"],
                }
            )
        result.sort(key=lambda m: -m["usd_24h"])
        return http.json_response({"markets": result})

    async def cascades(self, request: Request, _: KeyInfo) -> Response:
        params = request.query_params
        status = http.choice(params, "status", ("active", "past", "all"), "all")
        active = {"active": True, "past": False, "all": None}[status]
        alerts = await self.store.cascades(
            active=active,
            markets=tuple(m.upper() for m in http.strings(params, "market")),
            limit=http.integer(params, "limit", 100, low=1, high=1_000) or 100,
        )
        return http.json_response({"cascades": alerts})

    async def heatmap(self, request: Request, _: KeyInfo) -> Response:
        market = request.path_params["market"].upper()
        if self.heatmaps is None or market not in self.heatmaps.model.markets():
            return http.error_response(
                404,
                "not_found",
                f"no heatmap for {market!r} yet: it needs open-interest snapshots of the market",
            )
        params = request.query_params
        low = http.number(params, "low", 0.0) or None
        high = http.number(params, "high", 0.0) or None
        bucket = http.number(params, "bucket", 0.0) or None
        try:
            heatmap = self.heatmaps.model.heatmap(market, low=low, high=high, bucket=bucket)
        except ValueError as exc:
            raise http.BadRequest(str(exc)) from None
        return http.json_response(heatmap)

    # -- keys --------------------------------------------------------------------------------

    async def create_key(self, request: Request) -> Response:
        try:
            body = await http.json_body(await request.body())
            key = key_from(request.headers, request.query_params)
            owner: KeyInfo | None = None
            if key:
                owner = self.gate.authenticate(key)
                self.gate.limit(owner)
            else:
                address = request.client.host if request.client else "unknown"
                wait = self.registrations.acquire(address)
                if wait > 0:
                    raise AuthError(
                        429,
                        "rate_limited",
                        "too many key registrations from this address; retry later",
                        retry_after=RateLimiter.retry_after_header(wait),
                    )
            name = body.get("name", "default")
            account = owner.account if owner else body.get("account")
            if not isinstance(name, str) or not isinstance(account, str) or not account.strip():
                raise http.BadRequest(
                    'send {"account": "<your name or email>", "name": "<key label>"} as JSON'
                )
            new = self.gate.keys.create(account, name)
        except AuthError as exc:
            headers = {"Retry-After": exc.retry_after} if exc.retry_after else None
            return http.error_response(exc.status, exc.code, exc.message, headers)
        except (http.BadRequest, ValueError) as exc:
            return http.error_response(400, "bad_request", str(exc))
        return http.json_response(
            {
                "key": new.key,
                "key_id": new.info.key_id,
                "account": new.info.account,
                "name": new.info.name,
                "created_at": new.info.created_at,
                "note": "store this key now: it is shown once and kept only as a hash",
            },
            201,
        )

    async def list_keys(self, request: Request, info: KeyInfo) -> Response:
        return http.json_response({"keys": self.gate.keys.list_keys(info.account)})

    async def revoke_key(self, request: Request, info: KeyInfo) -> Response:
        key_id = request.path_params["key_id"]
        if not self.gate.keys.revoke(key_id, account=info.account):
            return http.error_response(
                404, "not_found", f"no active key {key_id!r} in account {info.account!r}"
            )
        closed = self.gate.revoked(key_id)
        return http.json_response({"revoked": key_id, "streams_closed": closed})

    # -- operations --------------------------------------------------------------------------

    async def health(self, request: Request) -> Response:
        return http.json_response(self.health_info())

    async def metrics(self, request: Request) -> Response:
        lines: list[str] = []

        def metric(name: str, kind: str, help_: str, samples: list[tuple[str, float]]) -> None:
            lines.append(f"# HELP purpleflea_{name} {help_}")
            lines.append(f"# TYPE purpleflea_{name} {kind}")
            for labels, value in samples:
                lines.append(f"purpleflea_{name}{labels} {value:g}")

        counters = self.tracker.counters
        metric(
            "events_total",
            "counter",
            "Venue events by what became of them.",
            [(f'{{outcome="{k}"}}', float(v)) for k, v in sorted(counters.items())],
        )
        metric("last_seq", "gauge", "Highest published seq.", [("", float(self.tracker.last_seq))])
        metric(
            "stream_clients", "gauge", "Open stream connections.", [("", len(self.gate.streams))]
        )
        metric(
            "auth_rejections_total",
            "counter",
            "Requests refused by authentication or rate limits.",
            [(f'{{reason="{k}"}}', float(v)) for k, v in sorted(self.gate.counters.items())],
        )
        health = self.health_info()
        ingest = health.get("ingest", [])
        if isinstance(ingest, list) and ingest:
            metric(
                "ingest_frames_total",
                "counter",
                "Frames received per exchange connection.",
                [(f'{{connection="{c["name"]}"}}', float(c["frames"])) for c in ingest],
            )
            metric(
                "ingest_reconnects_total",
                "counter",
                "Reconnects per exchange connection.",
                [(f'{{connection="{c["name"]}"}}', float(c["reconnects"])) for c in ingest],
            )
        for source in self.metric_sources:
            for family in source():
                metric(*family)
        return PlainTextResponse("\n".join(lines) + "\n", media_type="text/plain; version=0.0.4")

    def routes(self) -> list[Route]:
        return [
            Route("/v1/liquidations", self.authed(self.liquidations)),
            Route("/v1/liquidations/aggregate", self.authed(self.aggregate)),
            Route("/v1/markets", self.authed(self.markets)),
            Route("/v1/cascades", self.authed(self.cascades)),
            Route("/v1/heatmap/{market}", self.authed(self.heatmap)),
            Route("/v1/keys", self.create_key, methods=["POST"]),
            Route("/v1/keys", self.authed(self.list_keys), methods=["GET"]),
            Route("/v1/keys/{key_id}", self.authed(self.revoke_key), methods=["DELETE"]),
            Route("/v1/health", self.health),
            Route("/v1/metrics", self.metrics),
        ]
