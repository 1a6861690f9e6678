"""The estimated heatmap and the measured map share their bucket fields (model.PriceBuckets);
sharing them left both wire formats as they were: same fields, same order, same defaults."""

from __future__ import annotations

import msgspec

from purpleflea.model import Heatmap, PriceBuckets
from purpleflea.positions import MeasuredMap

BUCKETS = ("market", "ts", "mark_price", "bucket_size", "prices", "long_usd", "short_usd")
SHARED = {"market": "BTC-PERP", "ts": 1, "mark_price": 2.5, "bucket_size": 1.0}
ROWS = {"prices": (2.0, 3.0), "long_usd": (10.0, 0.0), "short_usd": (0.0, 20.0)}


def test_the_wire_order_is_the_one_clients_know() -> None:
    assert PriceBuckets.__struct_fields__ == BUCKETS
    assert Heatmap.__struct_fields__ == (*BUCKETS, "clusters", "source")
    assert MeasuredMap.__struct_fields__ == (
        *BUCKETS,
        "coverage",
        "coverage_uncapped",
        *("sampled_usd", "open_interest_usd", "accounts", "positions", "source"),
    )


def test_both_encode_and_decode_as_before() -> None:
    heatmap = Heatmap(**SHARED, **ROWS, clusters=())
    assert msgspec.json.encode(heatmap) == (
        b'{"market":"BTC-PERP","ts":1,"mark_price":2.5,"bucket_size":1.0,"prices":[2.0,3.0],'
        b'"long_usd":[10.0,0.0],"short_usd":[0.0,20.0],"clusters":[],"source":"estimated"}'
    )
    measured = MeasuredMap(
        **SHARED,
        **ROWS,
        coverage=0.5,
        coverage_uncapped=0.5,
        sampled_usd=30.0,
        open_interest_usd=60.0,
        accounts=2,
        positions=3,
    )
    wire = msgspec.json.encode(measured)
    assert wire.startswith(b'{"market":"BTC-PERP","ts":1,"mark_price":2.5,"bucket_size":1.0,')
    assert wire.endswith(b'"accounts":2,"positions":3,"source":"measured"}')
    assert msgspec.json.decode(wire, type=MeasuredMap) == measured
    assert isinstance(measured, PriceBuckets)
    assert isinstance(heatmap, PriceBuckets)
    assert not isinstance(measured, Heatmap)
