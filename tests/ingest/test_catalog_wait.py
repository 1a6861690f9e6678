"""Live ingest's bounded wait for the instrument catalogs at its start: the catalogs that
answered within it are used, whichever other one is still loading when it ends."""

from __future__ import annotations

import asyncio
import json

from purpleflea.ingest import feeds
from purpleflea.ingest.catalog import Source
from purpleflea.ingest.live import LiveIngest
from purpleflea.venues.gate import catalog as gate_catalog
from purpleflea.venues.okx import catalog as okx_catalog
from tests.fakes.rest import FakeRest
from tests.ports import refused_port

_OKX = json.dumps(
    {"data": [{"instId": "NEWCOIN-USDT-SWAP", "ctVal": "1", "ctMult": "1", "ctType": "linear"}]}
).encode()


async def test_catalogs_that_answered_in_time_are_used_though_another_is_still_loading() -> None:
    # One slow venue (a paged catalog, a far server) held the start's wait to its end, and
    # the wait then cancelled every fetch together: the catalogs that had answered were
    # dropped with the one that had not, and every feed started on cached or bundled
    # contracts (a coin listed since then unsized until the next refresh, an hour later).
    loading = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)  # never answers
    slow = f"http://127.0.0.1:{loading.sockets[0].getsockname()[1]}"
    with refused_port() as nowhere:  # the feeds' connections refused
        refused = f"ws://127.0.0.1:{nowhere}/ws"
        async with FakeRest({"/okx": _OKX}) as rest:
            ingest = LiveIngest(
                lambda event, at: None,
                lambda snapshot: None,
                exchanges=["okx", "gate"],
                urls=dict.fromkeys(feeds.URLS, refused),
                catalog_sources=(
                    Source("okx", f"{rest.base}/okx", okx_catalog.parse),
                    Source("gate", f"{slow}/gate", gate_catalog.parse),
                ),
                catalog_wait_s=0.5,
                poll_sources=(),
                http_timeout=30.0,
            )
            await ingest.start()
            try:
                assert "NEWCOIN-USDT-SWAP" in ingest.catalogs.get("okx")
                assert "BTC_USDT" in ingest.catalogs.get("gate")  # not answered: kept
            finally:
                await ingest.stop()
                loading.close()
