"""A push with some unreadable rows is counted as malformed, and its other rows' liquidations
are still delivered (the normalizers' side: tests/venues/test_partial_frames.py)."""

from __future__ import annotations

import json
from pathlib import Path

from purpleflea.ingest import feeds
from purpleflea.ingest.connection_stats import ConnectionStats
from purpleflea.ingest.dedupe import Deduper
from purpleflea.ingest.node_follower import NodeFollower
from purpleflea.ingest.received_frames import deliver
from purpleflea.model import VenueLiquidation
from purpleflea.venues.hyperliquid import normalize_node_fills
from tests.fakes.harness import catalogs_for_tests, expected_events

SPECS = {spec.name: spec for spec in feeds.build_feeds(catalogs_for_tests())}


def _okx_push() -> str:
    """An OKX liquidation-orders push whose second detail has an empty bkPx."""
    details = [
        {"bkPx": px, "posSide": "net", "side": "sell", "sz": "3", "ts": "1789000000000"}
        for px in ("60000", "", "60100")
    ]
    item = {"instId": "BTC-USD-SWAP", "instType": "SWAP", "details": details}
    return json.dumps(
        {"arg": {"channel": "liquidation-orders", "instType": "SWAP"}, "data": [item]}
    )


def test_the_readable_rows_of_a_push_are_delivered_and_the_frame_counted() -> None:
    spec, stats, sunk = SPECS["okx"], ConnectionStats("okx"), []
    carried = deliver(_okx_push(), 0, 0.0, spec, lambda e, _: sunk.append(e), stats, Deduper())
    assert carried
    assert [e.price for e in sunk] == [60000.0, 60100.0]
    assert (stats.events, stats.malformed) == (2, 1)
    assert stats.errors["malformed_rows"] == 1
    assert "1 of 3 rows skipped: data[0].details[1].bkPx" in stats.last_error
    # The fakes' expectation of a connection reads a partial frame the same way.
    assert [e.id for e in expected_events(spec, [_okx_push()])] == [e.id for e in sunk]


def test_a_node_block_with_a_bad_fill_still_hands_the_others(tmp_path: Path) -> None:
    def fill(tid: int, side: str) -> dict[str, object]:
        return {
            "coin": "BTC",
            "px": "60000",
            "sz": "0.1",
            "side": side,
            "time": 1789000000000,
            "hash": "0x1",
            "tid": tid,
            "liquidation": {"liquidatedUser": "0xa", "markPx": "60000", "method": "market"},
        }

    block = {
        "block_time": "2026-09-10T00:00:00",
        "events": [["0xa", fill(1, "A")], ["0xa", fill(2, "?")]],
    }
    folder = tmp_path / "node_fills"
    folder.mkdir()
    (folder / "0").write_text(json.dumps(block) + "\n")
    sunk: list[VenueLiquidation] = []
    follower = NodeFollower(folder, normalize_node_fills, lambda e, _: sunk.append(e))
    follower.poll()
    assert [e.trade_id for e in sunk] == ["1"]
    assert (follower.stats.lines, follower.stats.bad_lines) == (1, 1)
