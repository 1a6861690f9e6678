"""What a stream's filters do to cascade alerts, as the README says: ``markets`` and ``sides``
filter them, ``min_usd``, ``exchanges`` and ``coverages`` only liquidations (an alert is its
market's across venues and has no single size a liquidation's ``min_usd`` means)."""

from __future__ import annotations

from purpleflea.server.filters import parse_filter
from purpleflea.venues import registry
from tests.events import stored_alert

# Its size ($25.4K) under the min_usd asked below, on one venue not among the exchanges asked.
ALERT = stored_alert(
    1, market="DOGS-PERP", window_usd=25_400.0, total_usd=25_400.0, exchanges=("bybit",)
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
