"""Shared pieces of the reliability and security suite: a loopback server with generous limits.

The suite attacks the server the way the internet would (fuzzed requests, hostile WebSocket
clients, injection-shaped filters, key misuse, churn), so its server raises the rate limits
and the stream caps: a 429 would otherwise end most probes before they reach the code under
test.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from purpleflea.server.config import ServerConfig
from tests.server.conftest import Running, make_config, running_server, venue_event

__all__ = ["Running", "make_config", "running_server", "venue_event"]

#: Events every test server starts with (two markets, both sides, two exchanges).
SEEDED = (
    ("BTC-PERP", "long", 250_000.0, "binance_usdm"),
    ("BTC-PERP", "short", 40_000.0, "bybit"),
    ("ETH-PERP", "long", 120_000.0, "okx"),
    ("ETH-PERP", "short", 900_000.0, "binance_usdm"),
)


def reliability_config(tmp_path: Path, **overrides: object) -> ServerConfig:
    return make_config(
        tmp_path,
        rate_per_s=10_000.0,
        rate_burst=10_000.0,
        registrations_per_min=10_000.0,
        # One account opens every probe's stream (and the soak churns them).
        streams_per_account=10_000,
        stream_opens_per_min=100_000.0,
        **overrides,
    )


async def _seeded(tmp_path: Path) -> AsyncIterator[Running]:
    async with running_server(reliability_config(tmp_path)) as running:
        await running.push(
            *(venue_event(market=m, side=s, size_usd=usd, exchange=x) for m, s, usd, x in SEEDED)
        )
        yield running


@pytest.fixture
async def seeded(tmp_path: Path) -> AsyncIterator[Running]:
    """A running server holding the :data:`SEEDED` events (one per test)."""
    async for running in _seeded(tmp_path):
        yield running


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def shared_server(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Running]:
    """One seeded server for a whole module whose tests only add events (they run on the
    module's event loop: ``pytestmark = pytest.mark.asyncio(loop_scope="module")``)."""
    async for running in _seeded(tmp_path_factory.mktemp("shared")):
        yield running
