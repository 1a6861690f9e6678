"""A contract listed since the catalog was fetched (its first liquidations dropped unsized)
makes live ingest fetch that exchange's catalog again early, not an hour later: the
following liquidations of the new coin are sized and published."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable

from purpleflea.ingest import catalog
from purpleflea.ingest.backoff import Backoff
from purpleflea.ingest.live import LiveIngest
from purpleflea.model import VenueLiquidation
from purpleflea.venues.okx import catalog as okx_catalog
from tests.fakes.exchanges import FakeExchange, dialect_for
from tests.fakes.rest import FakeRest
from tests.ingest.test_live import okx_frame

BTC = {"instId": "BTC-USDT-SWAP", "ctVal": "0.01", "ctMult": "1", "ctType": "linear"}
NEW = {"instId": "NEW-USDT-SWAP", "ctVal": "10", "ctMult": "1", "ctType": "linear"}


async def _until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:
        await asyncio.sleep(0.01)


def _ingest(
    rest: FakeRest, okx: FakeExchange, sink: Callable[..., object], *, early_s: float
) -> LiveIngest:
    """Live ingest of one OKX connection whose catalog is ``rest``'s, checked every 20 ms."""
    return LiveIngest(
        sink,
        exchanges=["okx"],
        urls={"okx": okx.url},
        catalog_sources=(catalog.Source("okx", f"{rest.base}/okx/instruments", okx_catalog.parse),),
        poll_sources=(),
        backoff=lambda: Backoff(base=0.01, cap=0.05),
        catalog_check_s=0.02,
        catalog_early_s=early_s,
    )


async def test_an_unsized_new_contract_refreshes_its_exchange_s_catalog_early() -> None:
    answers: list[list[dict[str, str]]] = []

    def instruments(_: dict[str, str]) -> bytes:
        # NEW is listed after the fetch at start: every later answer has it.
        listed = [BTC] if not answers else [BTC, NEW]
        answers.append(listed)
        return json.dumps({"code": "0", "data": listed}).encode()

    events: list[VenueLiquidation] = []
    async with (
        FakeRest({"/okx/instruments": instruments}) as rest,
        FakeExchange(dialect_for("okx"), [okx_frame("NEW-USDT-SWAP", 1)]) as okx,
    ):
        ingest = _ingest(rest, okx, lambda event, received_at: events.append(event), early_s=0.0)
        await ingest.start()
        try:
            okx_stats = next(s for s in ingest._stats if s.name == "okx")
            await _until(lambda: okx_stats.unsized == 1)
            await _until(lambda: "NEW-USDT-SWAP" in ingest.catalogs.get("okx"))
            assert await okx.broadcast(okx_frame("NEW-USDT-SWAP", 2)) == 1
            await _until(lambda: bool(events))
            await asyncio.sleep(0.1)  # more checks: no fetch without a new unsized symbol
        finally:
            await ingest.stop()
    assert okx_stats.unsized == 1
    assert [(e.symbol, e.quantity) for e in events] == [("NEW-USDT-SWAP", 40.0)]
    assert len(rest.requests) == 2  # at start, and once early for the new symbol


async def test_early_fetches_of_one_exchange_are_spaced_by_catalog_early_s() -> None:
    # A venue listing several coins at once: the first one's drop fetches the catalog early,
    # the next ones' wait for catalog_early_s (or the regular refresh).
    async with (
        FakeRest({"/okx/instruments": json.dumps({"code": "0", "data": [BTC]}).encode()}) as rest,
        FakeExchange(dialect_for("okx"), [okx_frame("NEW-USDT-SWAP", 1)]) as okx,
    ):
        ingest = _ingest(rest, okx, lambda event, received_at: None, early_s=60.0)
        await ingest.start()
        try:
            okx_stats = next(s for s in ingest._stats if s.name == "okx")
            await _until(lambda: len(rest.requests) == 2)  # at start, then early for NEW
            await okx.broadcast(okx_frame("OTHER-USDT-SWAP", 2))
            await _until(lambda: okx_stats.unsized == 2)
            await asyncio.sleep(0.1)
        finally:
            await ingest.stop()
    assert okx_stats.snapshot(0.0)["unsized_symbols"] == {"NEW-USDT-SWAP": 1, "OTHER-USDT-SWAP": 1}
    assert len(rest.requests) == 2


async def test_an_early_fetch_that_fails_is_tried_again_after_catalog_early_s() -> None:
    # The exchange's REST was busy when the new coin's drop asked for its catalog: the coin
    # must not wait for the hourly refresh because of one failed answer.
    answers: list[int] = []

    def instruments(_: dict[str, str]) -> bytes:
        answers.append(1)
        if len(answers) == 2:  # the first early fetch
            return json.dumps({"code": "50001", "msg": "Service temporarily unavailable"}).encode()
        listed = [BTC] if len(answers) == 1 else [BTC, NEW]
        return json.dumps({"code": "0", "data": listed}).encode()

    async with (
        FakeRest({"/okx/instruments": instruments}) as rest,
        FakeExchange(dialect_for("okx"), [okx_frame("NEW-USDT-SWAP", 1)]) as okx,
    ):
        ingest = _ingest(rest, okx, lambda event, received_at: None, early_s=0.1)
        await ingest.start()
        try:
            await _until(lambda: "NEW-USDT-SWAP" in ingest.catalogs.get("okx"), timeout=3.0)
        finally:
            await ingest.stop()
    assert "NEW-USDT-SWAP" in ingest.catalogs.get("okx")
    assert len(rest.requests) == 3  # at start, the early fetch that failed, its retry
