"""What a stream's filters do to cascade alerts, as the README says: ``markets`` and ``sides``
filter them, ``min_usd``, ``exchanges`` and ``coverages`` only liquidations (an alert is its
market's across venues and has no single size a liquidation's ``min_usd`` means)."""

from __future__ import annotations

from purpleflea.model import CascadeAlert
from purpleflea.server.filters import parse_filter
from purpleflea.venues import registry

ALERT = CascadeAlert(
    id="DOGS-PERP:long:1",
    status="started",
    market="DOGS-PERP",
    side="long",
    score=7,
    peak_score=7,
    window_usd=25_400.0,
    window_s=90,
    total_usd=25_400.0,
    events=40,
    started_at=1,
    updated_at=2,
    duration_s=90.0,
    start_price=1.0,
    last_price=0.98,
    price_move_pct=-2.0,
    exchanges=("bybit",),
    message="DOGS-PERP: $25.4K of longs liquidated in 90 s, cascade score 7/10, ...",
)


def _wants(**fields: object) -> bool:
    stream = parse_filter(
        {"channels": ["liquidations", "cascades"], **fields},
        known_exchanges=registry.EXCHANGE_IDS,
    )
    return stream.wants(ALERT)


def test_markets_and_sides_filter_alerts_and_liquidation_filters_do_not() -> None:
    assert _wants()
    assert _wants(min_usd=1_000_000, exchanges=["okx"], coverages=["sampled"])
    assert _wants(markets=["DOGS-PERP"], sides=["long"])
    assert not _wants(markets=["BTC-PERP"])
    assert not _wants(sides=["short"])
    assert not parse_filter({"channels": ["liquidations"]}, known_exchanges=()).wants(ALERT)
