"""The REST routes: history, aggregates, markets, cascades, keys, health and metrics."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import msgspec
from starlette.datastructures import QueryParams
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from purpleflea.clock import now_ms
from purpleflea.cputime import CpuMeter, collector_pauses, metered
from purpleflea.engine.heatmap_feed import HeatmapFeed
from purpleflea.model import Coverage, market_name, order_side_hint
from purpleflea.server import http
from purpleflea.server.auth import AuthError, Gate
from purpleflea.server.filters import SIDES, spelled_as_known
from purpleflea.server.keys import AccountExists, KeyInfo, KeyLimitReached, NewKey
from purpleflea.server.measured_route import measured_heatmap
from purpleflea.server.pipeline import Pipeline
from purpleflea.server.pipeline_metrics import pipeline_families
from purpleflea.server.query_params import QueryCheck
from purpleflea.server.ratelimit import SITE_SHARE, RateLimiter, client_network, client_site
from purpleflea.server.shared_render import BudgetedRender
from purpleflea.store.base import INTERVAL_MS, Bucket, Order, Query, Store, time_cursor
from purpleflea.venues import registry
from purpleflea.venues.venue import COVERAGES, PriceKind

if TYPE_CHECKING:
    from purpleflea.server.measured import MeasuredMaps

Handler = Callable[[Request], Awaitable[Response]]
AuthedHandler = Callable[[Request, KeyInfo], Awaitable[Response]]
#: More ``/v1/metrics`` families: ``(name, kind, help, [(labels, value), ...])``.
MetricSource = Callable[[], list[tuple[str, str, str, list[tuple[str, float]]]]]

_DAY_MS = 86_400_000
#: Seconds ``/v1/markets`` reuses its 24 h totals (last prices are always current).
DAY_TOTALS_TTL_S = 5.0
_DEFAULT_SPAN = {"1m": 6 * 3_600_000, "1h": 7 * _DAY_MS, "1d": 365 * _DAY_MS}
#: The longest window of an aggregate that reads every event (``min_usd``: the rollups hold no
#: sizes) or every minute (``interval=1m``). Over a year of a 3M-event store one such request
#: (``interval=1d&start=0&min_usd=0.01&group_by=side``, a 100 KB answer that the size charge
#: never saw) ran for over 6 minutes at 5.8 GB and stalled the event loop for seconds; a week
#: is what the hourly default already spans.
MAX_FINE_SPAN_MS = 7 * _DAY_MS
#: The share of a core ``/v1/metrics`` renders may use on average, all clients together, and
#: the CPU seconds they may use at once before requests share renders (server/shared_render.py).
#: A render costs ~0.5 ms on an idle server (bench/metrics_flood.py --profile): a scrape every
#: 15 s, or a test reading after each action, never waits.
METRICS_CPU_SHARE = 0.1
METRICS_CPU_BURST_S = 0.5


def _markets(params: QueryParams) -> tuple[str, ...]:
    """The ``market`` filter's names, upper-cased; a name no event can carry is refused
    (it would match nothing, silently)."""
    try:
        return tuple(market_name(m) for m in http.strings(params, "market"))
    except ValueError as exc:  # http.BadRequest is one too: the same message
        raise http.BadRequest(str(exc)) from None


def _key_request(body: dict[str, object]) -> tuple[str | None, str]:
    """``(account, name)`` of a POST /v1/keys body, checked whether or not the caller has a
    key (with one the account is not used, but a malformed body is still refused)."""
    account = body.get("account")
    name = body.get("name", "default")
    if "account" in body and (
        not isinstance(account, str) or not account.strip() or len(account) > 200
    ):
        raise http.BadRequest("account must be a string of 1 to 200 characters, not all blank")
    if not isinstance(name, str) or len(name) > 200:
        raise http.BadRequest("name must be a string of at most 200 characters")
    return (account if isinstance(account, str) else None), name


class Api:
    """Route handlers over the tracker's store, bus state and key store."""

    def __init__(
        self,
        *,
        tracker: Pipeline,
        store: Store,
        gate: Gate,
        known_exchanges: tuple[str, ...],
        health: Callable[[], dict[str, Any]],
        registrations_per_min: float,
        registration_open: bool = True,
        keys_per_account: int = 10,
        ready: Callable[[], tuple[bool, dict[str, Any]]] | None = None,
        heatmaps: HeatmapFeed | None = None,
        measured: MeasuredMaps | None = None,
        query_check: QueryCheck | None = None,
    ) -> None:
        self.tracker = tracker
        self.store = store
        self.gate = gate
        self.known_exchanges = known_exchanges
        self.health_info = health
        self.ready_info = ready
        self.heatmaps = heatmaps
        self.measured = measured
        self.query_check = query_check
        self.registration_open = registration_open
        self.keys_per_account = keys_per_account
        self._list_keys = self.authed(self.list_keys)
        self.registrations = RateLimiter(
            registrations_per_min / 60.0, max(1.0, registrations_per_min)
        )
        #: The /64s of one IPv6 /48 together (``client_site``).
        self.site_registrations = RateLimiter(
            SITE_SHARE * registrations_per_min / 60.0, max(1.0, SITE_SHARE * registrations_per_min)
        )
        self.metric_sources: list[MetricSource] = []
        self._metrics = BudgetedRender(
            self.render_metrics, share=METRICS_CPU_SHARE, burst_s=METRICS_CPU_BURST_S
        )
        self._day_lock = asyncio.Lock()
        self._day_totals: tuple[float, list[Bucket] | None] = (0.0, None)

    # -- plumbing ----------------------------------------------------------------------------

    def authed(self, handler: AuthedHandler) -> Handler:
        async def endpoint(request: Request) -> Response:
            try:
                info = self.gate.authenticate(
                    self.gate.request_key(request.headers, request.query_params)
                )
                async with self.gate.turn(info):
                    refusal = self._unknown_params(request)
                    if refusal is not None:
                        return http.error_response(400, "bad_request", refusal)
                    started, paused, meter = time.monotonic(), collector_pauses(), CpuMeter()
                    response = await metered(handler(request, info), meter)
                    # Neither the collector's CPU nor its pauses are the request's own work.
                    waited = time.monotonic() - started - (collector_pauses() - paused)
                    self.gate.charge_work(
                        info,
                        # Wall time only stands in for a database server's work: where the
                        # meter sees all of it, a loaded machine's waits are nobody's cost.
                        seconds=None if self.store.reads_metered else waited,
                        cpu_s=meter.seconds,
                        size=len(getattr(response, "body", b"")),
                    )
                    return response
            except AuthError as exc:
                return http.refusal(exc)
            except http.BadRequest as exc:
                return http.error_response(400, "bad_request", str(exc))

        return endpoint

    def _unknown_params(self, request: Request) -> str | None:
        if self.query_check is None:
            return None
        scope = request.scope
        return self.query_check.refusal(scope["method"], scope["path"], scope["query_string"])

    def _query(self, request: Request, *, limit_default: int = 100) -> Query:
        params = request.query_params
        sides = spelled_as_known(http.strings(params, "side"), SIDES)
        for side in sides:
            if side not in SIDES:
                raise http.BadRequest(
                    f"side must be long or short, got {side!r}{order_side_hint([side])}"
                )
        exchanges = http.exchanges(params, self.known_exchanges)
        coverages = spelled_as_known(http.strings(params, "coverage"), COVERAGES)
        for coverage in coverages:
            if coverage not in COVERAGES:
                raise http.BadRequest(
                    f"coverage must be one of {', '.join(COVERAGES)}, got {coverage!r}"
                )
        start = http.epoch_ms(params, "start", None)
        # end is exclusive, so 0 selects nothing: refused like any empty window.
        end = http.epoch_ms(params, "end", None, low=1)
        http.check_window(start, end)
        # Only the history route documents order (server/query_params.py refuses it elsewhere).
        order: Order = "ts" if http.choice(params, "order", ("seq", "ts"), "seq") == "ts" else "seq"
        return Query(
            markets=_markets(params),
            exchanges=exchanges,
            sides=sides,
            coverages=coverages,
            min_usd=http.number(params, "min_usd", 0.0),
            start_ms=start,
            end_ms=end,
            before_seq=None if order == "ts" else _seq_cursor(params),
            limit=http.integer(params, "limit", limit_default, low=1, high=1_000) or limit_default,
            order=order,
            before_key=_time_cursor(params.get("cursor")) if order == "ts" else None,
        )

    # -- data routes -------------------------------------------------------------------------

    async def liquidations(self, request: Request, _: KeyInfo) -> Response:
        page = await self.store.query(self._query(request))
        return http.json_response({"events": page.events, "next_cursor": page.next_cursor})

    async def aggregate(self, request: Request, _: KeyInfo) -> Response:
        params = request.query_params
        interval = http.choice(params, "interval", ("1m", "1h", "1d"), "1h", any_case=False)
        group_by = http.choice(params, "group_by", ("market", "exchange", "side"), "market")
        # A history page's cursor means nothing to an aggregate (it is not in the document, so
        # server/query_params.py refuses it before this runs): never a cut of the buckets.
        query = msgspec.structs.replace(self._query(request), before_seq=None)
        fine = query.min_usd > 0 or interval == "1m"
        end = query.end_ms if query.end_ms is not None else now_ms()
        if query.start_ms is None:
            span = min(_DEFAULT_SPAN[interval], MAX_FINE_SPAN_MS if fine else math.inf)
            # Aligned to the bucket width (at most an hour) so the rollups answer it.
            align = min(INTERVAL_MS[interval], 3_600_000)
            start = int(end - span) // align * align
            query = msgspec.structs.replace(query, start_ms=start)
        elif fine and end - query.start_ms > MAX_FINE_SPAN_MS:
            reads = "every event (min_usd)" if query.min_usd > 0 else "every minute (1m)"
            raise http.BadRequest(
                f"this aggregate reads {reads}: its window (start to end, default now) is at "
                f"most 7 days, got {(end - query.start_ms) / _DAY_MS:,.1f} days: ask for several "
                "windows, or leave out min_usd and use 1h or 1d buckets (any span)"
            )
        # estimate=false: the measure alone, for a caller that reads only it (the dashboard's
        # top markets): the open hour's estimate was 0.34-0.45 s of CPU in a simulated crash.
        estimate = http.choice(params, "estimate", ("true", "false"), "true") == "true"
        buckets = await self.store.aggregate(
            interval,  # type: ignore[arg-type]
            group_by,  # type: ignore[arg-type]
            query,
            estimate=estimate,
        )
        return http.json_response({"interval": interval, "group_by": group_by, "buckets": buckets})

    async def _day_rows(self) -> list[Bucket]:
        """The last 24 h per market, measured, shared by every caller for
        :data:`DAY_TOTALS_TTL_S`: an aggregate over a day of minute rollups (~0.4 s of CPU on
        275 simulated markets, nearly all of it the estimate, now left out) ran for every
        request, so one account asking at its allowed rate kept 0.75 of a core busy and
        another account's stream pings waited up to 450 ms."""
        async with self._day_lock:  # callers arriving meanwhile take the answer it makes
            computed, rows = self._day_totals
            if rows is None or time.monotonic() - computed >= DAY_TOTALS_TTL_S:
                start = (now_ms() - _DAY_MS) // 60_000 * 60_000
                # The measure alone: the estimate beside it (est_*, not shown here) was
                # 0.39 s of the 0.4 s, on 275 simulated markets in a crash.
                rows = await self.store.aggregate(
                    "1d", "market", Query(start_ms=start), estimate=False
                )
                self._day_totals = (time.monotonic(), rows)
            return rows

    async def markets(self, request: Request, _: KeyInfo) -> Response:
        rows = await self._day_rows()
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
                    "last_price_ts": state.price_ts if state else None,
                    "last_ts": state.last_ts if state else None,
                    "exchanges": sorted(state.exchanges) if state else [],
                    "events_24h": day["count"],
                    "usd_24h": day["size_usd"],
                    "long_usd_24h": day["long_usd"],
                    "short_usd_24h": day["short_usd"],
                }
            )
        result.sort(key=lambda m: -m["usd_24h"])
        measured = list(self.measured.markets()) if self.measured is not None else []
        return http.json_response({"markets": result, "measured_heatmaps": measured})

    async def cascades(self, request: Request, _: KeyInfo) -> Response:
        params = request.query_params
        status = http.choice(params, "status", ("active", "past", "all"), "all")
        active = {"active": True, "past": False, "all": None}[status]
        alerts = await self.store.cascades(
            active=active,
            markets=_markets(params),
            limit=http.integer(params, "limit", 100, low=1, high=1_000) or 100,
        )
        return http.json_response({"cascades": alerts})

    async def heatmap(self, request: Request, _: KeyInfo) -> Response:
        try:
            market = market_name(request.path_params["market"])
        except ValueError as exc:
            raise http.BadRequest(str(exc)) from None
        source = request.query_params.get("source", "estimated")
        if source == "measured":
            return measured_heatmap(self.measured, market, request.query_params)
        if source != "estimated":
            raise http.BadRequest(f"source must be 'estimated' or 'measured', got {source!r}")
        known = self.heatmaps.model.markets() if self.heatmaps is not None else ()
        if self.heatmaps is None or market not in known:
            return http.error_response(
                404, "not_found", _no_heatmap(market, known, market in self.tracker.markets)
            )
        params = request.query_params
        low = http.optional_number(params, "low", positive=True)
        high = http.optional_number(params, "high", positive=True)
        bucket = http.optional_number(params, "bucket", positive=True)
        try:
            heatmap = self.heatmaps.model.heatmap(market, low=low, high=high, bucket=bucket)
        except ValueError as exc:
            raise http.BadRequest(str(exc)) from None
        return http.json_response(heatmap)

    # -- keys --------------------------------------------------------------------------------

    async def create_key(self, request: Request) -> Response:
        """Without a key: register a NEW account and its first key (anyone, while registration
        is open). With a key: mint another key for the caller's own account, up to the
        per-account cap. Nothing here adds a key to somebody else's account."""
        try:
            body = await http.json_body(request)
            key = self.gate.request_key(request.headers, request.query_params)
            if key:
                owner = self.gate.authenticate(key)
                self.gate.limit(owner)
                account, name = _key_request(body)
                new = self._mint(owner, account, name)
            else:
                self._admit_registration(request)
                account, name = _key_request(body)
                if account is None:
                    raise http.BadRequest(
                        'send {"account": "<new account name>", "name": "<key label>"} as JSON'
                    )
                new = self.gate.keys.register(account, name)
        except AuthError as exc:
            return http.refusal(exc)
        except AccountExists as exc:
            return http.error_response(409, "account_exists", str(exc))
        except KeyLimitReached as exc:
            return http.error_response(403, "key_limit_reached", str(exc))
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

    def _mint(self, owner: KeyInfo, account: str | None, name: str) -> NewKey:
        if account is not None and account.strip() != owner.account:
            raise AuthError(
                403,
                "forbidden",
                f"a key of account {owner.account!r} mints keys only for its own account "
                f'(asked for {account!r}); leave out "account"',
            )
        return self.gate.keys.mint(owner.account, name, cap=self.keys_per_account)

    def _admit_registration(self, request: Request) -> None:
        """Refuse a registration when registration is closed or this address registers too
        fast."""
        if not self.registration_open:
            raise AuthError(
                403,
                "registration_closed",
                "this server does not register new accounts: ask its operator for a key",
            )
        # The peer address: uvicorn replaces it with X-Forwarded-For only when the peer is
        # one of the operator's trusted proxies (ServerConfig.trusted_proxies).
        address = request.client.host if request.client else "unknown"
        # The address first: one that is over its own budget spends none of its site's.
        wait = self.registrations.acquire(client_network(address))
        site = client_site(address)
        if wait <= 0 and site is not None:
            wait = self.site_registrations.acquire(site)
        if wait > 0:
            self.gate.counters["registration_limited"] += 1
            raise AuthError(
                429,
                "rate_limited",
                "too many key registrations from this address; retry later",
                retry_after=RateLimiter.retry_after_header(wait),
            )

    async def keys(self, request: Request) -> Response:
        """``/v1/keys``: POST registers or adds a key, GET lists the account's keys."""
        if request.method == "POST":
            return await self.create_key(request)
        return await self._list_keys(request)

    async def list_keys(self, request: Request, info: KeyInfo) -> Response:
        return http.json_response({"keys": self.gate.keys.list_keys(info.account)})

    async def revoke_key(self, request: Request, info: KeyInfo) -> Response:
        key_id = request.path_params["key_id"]
        revocation = self.gate.keys.revoke(key_id, account=info.account)
        if revocation is None:
            # The same answer for another account's key as for none at all: no oracle.
            return http.error_response(
                404, "not_found", f"no key {key_id!r} in account {info.account!r}"
            )
        # Also for a repeat: the first revoke's node may have died before closing the streams.
        closed = self.gate.revoked(key_id)
        return http.json_response(
            {
                "revoked": key_id,
                "already_revoked": revocation.already,
                "revoked_at": revocation.revoked_at,
                "streams_closed": closed,
            }
        )

    # -- operations --------------------------------------------------------------------------

    async def health(self, request: Request) -> Response:
        """Always 200 while the process answers: the verdict is the body's ``status`` (``ok``
        or ``degraded``, with ``reasons``), so a monitor can read why. For a load balancer's
        yes/no, use ``/v1/ready``."""
        return http.json_response(self.health_info())

    async def ready(self, request: Request) -> Response:
        """200 ``{"ready": true}`` while this process serves; 503 with the ``reasons`` while
        it cannot (starting, shutting down, store writes failing, bus down)."""
        if self.ready_info is None:
            return http.json_response({"ready": True, "reasons": []})
        ready, body = self.ready_info()
        return http.json_response(body, status=200 if ready else 503)

    async def exchanges(self, request: Request) -> Response:
        """The exchange ids a filter may name, with display name, coverage and what their
        events' ``price`` is (public: the dashboard builds its exchange filter from it before
        a key is entered)."""
        rows = []
        for exchange_id in self.known_exchanges:
            found = registry.EXCHANGES.get(exchange_id)
            rows.append(
                {
                    "id": exchange_id,
                    "name": found.display_name if found else exchange_id,
                    "coverage": _coverage(exchange_id),
                    "price": _price_kind(exchange_id),
                }
            )
        return http.json_response({"exchanges": rows})

    async def metrics(self, request: Request) -> Response:
        """The Prometheus text page, public. Rendered for each request, within a CPU budget
        all clients share: beyond it, requests wait for a render made after they arrived."""
        text = await self._metrics.get()
        return PlainTextResponse(text, media_type="text/plain; version=0.0.4")

    def render_metrics(self) -> str:
        """The ``/v1/metrics`` page as it is now."""
        lines: list[str] = []

        def metric(name: str, kind: str, help_: str, samples: list[tuple[str, float]]) -> None:
            lines.append(f"# HELP purpleflea_{name} {help_}")
            lines.append(f"# TYPE purpleflea_{name} {kind}")
            for labels, value in samples:
                lines.append(f"purpleflea_{name}{labels} {sample_value(value)}")

        # The failures an operator alerts on are there from the start: a series that first
        # appears at its first increment hides that increment from increase() and rate().
        counters = {**dict.fromkeys(ALWAYS_EXPORTED, 0), **self.tracker.counters}
        metric(
            "events_total",
            "counter",
            "Every counter of the tracker's pipeline by name (kept for dashboards; it mixes "
            "liquidations with snapshots, alerts and failed attempts: the families below "
            "count each by its own name).",
            [(f'{{outcome="{k}"}}', float(v)) for k, v in sorted(counters.items())],
        )
        for family in pipeline_families(counters):
            metric(*family)
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
        metric(
            "healthy",
            "gauge",
            "1 while /v1/health says ok, 0 while degraded.",
            [("", 1.0 if health.get("status") == "ok" else 0.0)],
        )
        store = health.get("store")
        if isinstance(store, dict):
            metric(
                "store_writable",
                "gauge",
                "1 while the store takes writes, 0 while they fail (and are retried).",
                [("", 1.0 if store.get("writable") else 0.0)],
            )
        buffer = health.get("ingest_buffer")
        if isinstance(buffer, dict):
            metric(
                "ingest_buffered",
                "gauge",
                "Events accepted but not yet stored (capped; beyond it they are dropped).",
                [("", float(buffer.get("buffered", 0)))],
            )
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
            # What an operator alerts on per venue: a connection down, events stopping, drops.
            metric(
                "ingest_connection_up",
                "gauge",
                "1 while the exchange connection is connected, else 0 (connecting, backoff).",
                [
                    (f'{{connection="{c["name"]}"}}', float(c["state"] == "connected"))
                    for c in ingest
                ],
            )
            metric(
                "ingest_events_total",
                "counter",
                "Liquidations handed on per exchange connection (after duplicates).",
                [(f'{{connection="{c["name"]}"}}', float(c["events"])) for c in ingest],
            )
            metric(
                "ingest_dropped_total",
                "counter",
                "Frames or events an exchange connection dropped, by reason: malformed (a "
                "frame or some of its rows unreadable), unsized (contract size unknown).",
                [
                    (f'{{connection="{c["name"]}",reason="{reason}"}}', float(c[reason]))
                    for c in ingest
                    for reason in ("malformed", "unsized")
                ],
            )
            # The kinds of failure behind the reconnects (and the refusals that cause none):
            # /v1/health lists them, and an alert needs them as series (a refused subscribe
            # leaves the connection up and empty; only this counter moves).
            metric(
                "ingest_connection_errors_total",
                "counter",
                "Failures per exchange connection by kind, as /v1/health's errors: closed, "
                "unreachable, timeout, http_<status>, invalid_frame, silent, unanswered, "
                "refused, given_up, malformed_frame, answer_error and the others (docs/live.md).",
                [
                    (f'{{connection="{c["name"]}",kind="{kind}"}}', float(count))
                    for c in ingest
                    for kind, count in sorted(
                        {**dict.fromkeys(ALWAYS_EXPORTED_INGEST_ERRORS, 0), **c["errors"]}.items()
                    )
                ],
            )
        metric(
            "metrics_renders_total",
            "counter",
            "Renders of this page (this one not yet counted).",
            [("", float(self._metrics.renders))],
        )
        metric(
            "metrics_answers_shared_total",
            "counter",
            "Answers of this page that waited for the next render, the renders' CPU budget "
            f"({self._metrics.share:g} of a core on average, {self._metrics.burst_s:g} s at "
            "once) being spent; the requests waiting share that render.",
            [("", float(self._metrics.shared))],
        )
        for source in self.metric_sources:
            for family in source():
                metric(*family)
        return "\n".join(lines) + "\n"

    def routes(self) -> list[Route]:
        return [
            Route("/v1/liquidations", self.authed(self.liquidations)),
            Route("/v1/liquidations/aggregate", self.authed(self.aggregate)),
            Route("/v1/markets", self.authed(self.markets)),
            Route("/v1/cascades", self.authed(self.cascades)),
            Route("/v1/heatmap/{market}", self.authed(self.heatmap)),
            # One route per path, so a 405 (and OPTIONS) lists all of the path's methods.
            Route("/v1/keys", self.keys, methods=["GET", "POST"]),
            Route("/v1/keys/{key_id}", self.authed(self.revoke_key), methods=["DELETE"]),
            Route("/v1/exchanges", self.exchanges),
            Route("/v1/health", self.health),
            Route("/v1/ready", self.ready),
            Route("/v1/metrics", self.metrics),
        ]


#: ``purpleflea_events_total`` outcomes exported as 0 before they first happen.
ALWAYS_EXPORTED = ("dropped_buffer_full", "publish_errors", "store_write_errors")
#: ``purpleflea_ingest_connection_errors_total`` kinds exported as 0 for every connection
#: before they first happen (an alert's increase() sees the first); rarer kinds (``http_503``,
#: a reader's bug) appear when they happen.
ALWAYS_EXPORTED_INGEST_ERRORS = (
    "closed",
    "invalid_frame",
    "refused",
    "refused_retry",
    "silent",
    "timeout",
    "unanswered",
    "unreachable",
)


def sample_value(value: float) -> str:
    """A sample's value in the text format, exactly: a whole number in full (``%g`` kept six
    digits, so a counter past 999,999 read ``1.23457e+06`` and moved in steps Prometheus
    could not see), any other number as its shortest exact repr, infinities and NaN as the
    format spells them."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if float(value).is_integer():
        return str(int(value))
    return repr(float(value))


def _coverage(exchange_id: str) -> Coverage | None:
    """The coverage class ``exchange_id``'s events carry (``sim``'s too); None for an id no
    venue knows."""
    try:
        return registry.coverage_of(exchange_id)
    except KeyError:
        return None


def _price_kind(exchange_id: str) -> PriceKind | None:
    """What ``price`` is on ``exchange_id``'s events; None for an id no venue knows."""
    try:
        return registry.price_kind_of(exchange_id)
    except KeyError:
        return None


def _no_heatmap(market: str, known: tuple[str, ...], seen: bool) -> str:
    """Why ``market`` has no heatmap: not yet (liquidations ``seen``, no snapshot), or a name
    the tracker never met, which waiting will not fix."""
    if seen:
        return (
            f"no heatmap for {market!r} yet: it has liquidations but no open-interest snapshot "
            "has arrived (the heatmap is built from them; live feeds send one within a minute)"
        )
    if known:
        more = ", ..." if len(known) > 3 else ""
        has = f"{len(known)} market has" if len(known) == 1 else f"{len(known):,} markets have"
        hint = f"a typo? {has} a heatmap: {', '.join(known[:3])}{more}"
    else:
        hint = "no market has a heatmap yet"
    return (
        f"no heatmap for {market!r}: the tracker has seen no liquidation and no open-interest "
        f"snapshot of it ({hint}; GET /v1/markets lists the markets seen)"
    )


def _seq_cursor(params: QueryParams) -> int | None:
    """The ``cursor`` of an ``order=seq`` page: a seq (Python's int() would read a time
    cursor's '<ts>_<seq>' as one number, digits run together)."""
    raw = params.get("cursor")
    if raw is not None and "_" in raw:
        raise http.BadRequest(f"cursor {raw!r} is a cursor of order=ts: pass order=ts with it")
    return http.integer(params, "cursor", None, low=1)


def _time_cursor(raw: str | None) -> tuple[int, int] | None:
    """The ``cursor`` of an ``order=ts`` page (its ``next_cursor``) as the (ts, seq) pair."""
    if raw is None:
        return None
    try:
        pair = time_cursor(raw)
    except ValueError as exc:
        raise http.BadRequest(str(exc)) from None
    if max(pair) > http.MAX_INTEGER:
        raise http.BadRequest(f"cursor: ts and seq are at most {http.MAX_INTEGER}, got {raw!r}")
    return pair
