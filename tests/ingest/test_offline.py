"""No network at all: one clear WARNING per exchange, patient retries, an idle CPU."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest

from purpleflea.ingest import catalog, feeds, pollers
from purpleflea.ingest.backoff import Backoff
from purpleflea.ingest.live import LiveIngest
from tests.ports import refused_port


async def test_offline_start_warns_once_per_exchange_and_backs_off(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with refused_port() as port:
        # A black hole: accepts TCP, never answers the websocket handshake (open timeout).
        hole = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
        hole_port = hole.sockets[0].getsockname()[1]
        exchanges = feeds.available()
        # Half the connections are refused, half time out in the handshake; all on loopback (a
        # test sends nothing to any other address).
        targets = (f"127.0.0.1:{port}", f"127.0.0.1:{hole_port}")
        urls = {name: f"ws://{targets[i % 2]}/x" for i, name in enumerate(feeds.URLS)}
        rest = f"http://127.0.0.1:{port}"
        ingest = LiveIngest(
            lambda event, at: None,
            lambda snapshot: None,
            exchanges=exchanges,
            urls=urls,
            catalog_sources=tuple(
                catalog.Source(s.exchange, f"{rest}/{i}", s.parse)
                for i, s in enumerate(catalog.SOURCES)
            ),
            catalog_wait_s=1.0,
            poll_sources=tuple(
                pollers.PollSource(s.exchange, (f"{rest}/poll",), s.parse)
                for s in pollers.POLL_SOURCES
            ),
            backoff=lambda: Backoff(base=0.2, cap=1.0),
            open_timeout=0.5,
            http_timeout=0.5,
        )
        caplog.set_level(logging.DEBUG, logger="purpleflea")
        cpu = time.process_time()
        started = time.monotonic()
        await ingest.start()
        try:
            # Until every connection has failed at least twice: a warning logged once per
            # exchange must survive repeated failures, not only the first.
            deadline = started + 30.0
            while not all(int(row["reconnects"]) >= 2 for row in ingest.stats()):  # type: ignore[call-overload]
                assert time.monotonic() < deadline, ingest.stats()
                await asyncio.sleep(0.05)
            stats = ingest.stats()
        finally:
            await ingest.stop()
            hole.close()
        elapsed = time.monotonic() - started
        cpu = time.process_time() - cpu

        warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
        for exchange in exchanges:
            mine = [m for m in warnings if m.startswith(f"{exchange}:")]
            assert len(mine) == 1, (exchange, mine)
            assert "cannot reach" in mine[0] or "poll of" in mine[0]
        others = [m for m in warnings if not any(m.startswith(f"{e}:") for e in exchanges)]
        assert len(others) == 1, others
        assert others[0].startswith("instrument catalogs:")
        assert not [r for r in caplog.records if r.levelno >= logging.ERROR]

        assert len(stats) == len(feeds.build_feeds(ingest.catalogs, exchanges))
        kinds = {kind for row in stats for kind in dict(row["errors"])}  # type: ignore[call-overload]
        assert {"unreachable", "timeout"} <= kinds
        # Backoff U(0.1,0.2), U(0.2,0.4), U(0.4,0.8), then U(0.5,1): at most 3 attempts in the
        # first 0.7 s and one per 0.5 s after (plus the first attempt, and one in flight).
        most = 3 + max(0.0, elapsed - 0.7) / 0.5 + 2
        for row in stats:
            assert row["connects"] == 0
            assert 2 <= row["reconnects"] <= most, (row, elapsed)  # type: ignore[operator]
            assert row["state"] in ("backoff", "connecting", "stopped")
        assert cpu < 0.4 * elapsed, f"{cpu:.2f} s of CPU in {elapsed:.1f} s of retrying"
