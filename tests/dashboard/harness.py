"""What the dashboard's browser tests and screenshot script share: a served tracker whose
heatmap has data, Debian's chromium, and event bursts that look like real market moves."""

from __future__ import annotations

import contextlib
import math
import os
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from unittest import mock

from playwright.async_api import Browser, Playwright
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

import tests.server.conftest as served
from purpleflea.engine.heatmap import HeatmapModel
from purpleflea.model import MarketSnapshot, VenueLiquidation
from purpleflea.server import http
from purpleflea.server.app import Server
from purpleflea.server.auth import AuthError, key_from
from purpleflea.server.config import ServerConfig
from tests.server.conftest import Running, make_config, running_server, venue_event

CHROMIUM = Path(os.environ.get("PURPLEFLEA_CHROMIUM", "/usr/bin/chromium"))
BROWSER_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
    "--disable-quic",
]
HEATMAP_PATH = "/v1/heatmap/{market}"


def now_ms() -> int:
    return time.time_ns() // 1_000_000


async def launch_chromium(playwright: Playwright) -> Browser:
    """Debian's chromium, driven by Playwright; a clear error (not a skip) when it is missing."""
    if not CHROMIUM.exists():
        raise RuntimeError(
            f"chromium not found at {CHROMIUM}: the dashboard tests drive a real browser. "
            "Install Debian's chromium (`apt-get install chromium`) or point "
            "PURPLEFLEA_CHROMIUM at a Chromium binary (do not run `playwright install`)."
        )
    return await playwright.chromium.launch(executable_path=str(CHROMIUM), args=BROWSER_ARGS)


# -- the heatmap route ---------------------------------------------------------------------------


def _fallback_heatmap(server: Server) -> Route:
    """``GET /v1/heatmap/{market}`` over the tracker's heatmap model, for as long as the app
    does not serve the real route: same path, parameters, auth and JSON shape."""

    async def endpoint(request: Request) -> Response:
        try:
            server.gate.authenticate(key_from(request.headers, request.query_params))
        except AuthError as exc:
            return http.error_response(exc.status, exc.code, exc.message)
        model = server.tracker.heatmap
        assert isinstance(model, HeatmapModel)
        market = request.path_params["market"].upper()
        if market not in model.markets():
            return http.error_response(404, "not_found", f"no heatmap for {market!r} yet")
        try:
            params = request.query_params
            heatmap = model.heatmap(
                market,
                low=http.number(params, "low", 0.0) or None,
                high=http.number(params, "high", 0.0) or None,
                bucket=http.number(params, "bucket", 0.0) or None,
            )
        except ValueError as exc:
            return http.error_response(400, "bad_request", str(exc))
        return http.json_response(heatmap)

    return Route(HEATMAP_PATH, endpoint)


def _with_heatmap(create_app: Callable[..., Starlette]) -> Callable[..., Starlette]:
    def build(config: ServerConfig, *, server: Server) -> Starlette:
        app = create_app(config, server=server)
        if server.tracker.heatmap is None:
            server.tracker.heatmap = HeatmapModel()
        if not any(getattr(route, "path", None) == HEATMAP_PATH for route in app.routes):
            app.router.routes.insert(0, _fallback_heatmap(server))
        return app

    return build


@contextlib.asynccontextmanager
async def dashboard_server(data_dir: Path) -> AsyncIterator[Running]:
    """A real tracker on a loopback port (tests/server's harness) with a heatmap to show."""
    with mock.patch.object(served, "create_app", _with_heatmap(served.create_app)):
        async with running_server(make_config(data_dir)) as running:
            yield running


# -- market data ---------------------------------------------------------------------------------


def seed_heatmap(running: Running, market: str, mark: float, oi_usd: float) -> None:
    """Two days of hourly open-interest snapshots around ``mark`` (price wandering +/- 6 %,
    open interest growing), so positions sit at many liquidation prices and form clusters."""
    start = now_ms() - 48 * 3_600_000
    for hour in range(49):
        price = mark * (1 + 0.06 * math.sin(hour / 7.0) * (1 - hour / 48))
        coins = oi_usd / mark * (0.6 + 0.4 * hour / 48)
        running.server.tracker.on_snapshot(
            MarketSnapshot(
                exchange="binance_usdm",
                symbol=market.replace("-PERP", "USDT"),
                market=market,
                ts=start + hour * 3_600_000,
                mark_price=price,
                open_interest=coins,
                open_interest_usd=coins * price,
            )
        )


def cascade_burst(
    market: str, side: str, *, price: float, events: int = 12, size_usd: float = 400_000.0
) -> list[VenueLiquidation]:
    """A quiet first liquidation (the market's yardstick) and then a dense burst of large
    same-side ones, each filled 0.15 % further against the side, over the last few seconds:
    what the cascade engine calls a cascade (score >= 7, > $25k, price pushed >= 0.5 %)."""
    now = now_ms()
    step = -0.0015 if side == "long" else 0.0015
    burst = [venue_event(market=market, side=side, size_usd=5_000.0, price=price, ts=now - 20_000)]
    for i in range(events):
        price *= 1 + step
        burst.append(
            venue_event(
                market=market,
                side=side,
                size_usd=size_usd,
                price=round(price, 2),
                exchange=("bybit", "okx", "binance_usdm")[i % 3],
                ts=now - events * 1_000 + i * 1_000,
            )
        )
    return burst
