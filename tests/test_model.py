"""The published event: item access, JSON round trip, and publishing venue events."""

from __future__ import annotations

import pytest

from purpleflea.model import (
    Liquidation,
    UnsizedLiquidation,
    VenueLiquidation,
    decode_liquidation,
    encode,
    to_liquidation,
)


def _venue(**overrides: object) -> VenueLiquidation:
    fields: dict[str, object] = {
        "id": "binance_usdm:BTCUSDT:1700000000123:SELL:0.5",
        "exchange": "binance_usdm",
        "symbol": "BTCUSDT",
        "market": "BTC-PERP",
        "side": "long",
        "price": 60000.0,
        "quantity": 0.5,
        "size_usd": 30000.0,
        "ts": 1_700_000_000_123,
    }
    fields.update(overrides)
    return VenueLiquidation(**fields)  # type: ignore[arg-type]


def test_published_event_reads_by_item_and_attribute() -> None:
    event = to_liquidation(
        _venue(), seq=7, received_at=1_700_000_000_200, coverage="snapshot", cascade_score=4
    )
    assert event["side"] == event.side == "long"
    assert event["size_usd"] == 30000.0
    assert event["cascade_score"] == 4
    assert event["seq"] == 7
    with pytest.raises(KeyError):
        event["nope"]
    assert set(event.keys()) == set(event.to_dict())


def test_published_event_answers_what_dict_style_code_asks() -> None:
    # `"cascade_score" in event` raised KeyError: 0 (Python fell back to indexing by position)
    # and event.get(...) was an AttributeError: an agent written against dicts crashed.
    event = to_liquidation(
        _venue(), seq=7, received_at=1_700_000_000_200, coverage="snapshot", cascade_score=4
    )
    assert "cascade_score" in event
    assert "nope" not in event
    assert event.get("side") == "long"
    assert event.get("nope", "x") == "x"
    assert list(event) == list(event.keys())
    assert dict(event) == event.to_dict()
    assert event.to_dict()["size_usd"] == 30000.0


def test_json_round_trip_is_lossless() -> None:
    event = to_liquidation(_venue(), seq=1, received_at=1_700_000_000_200, coverage="snapshot")
    assert decode_liquidation(encode(event)) == event


def test_event_without_exchange_time_takes_the_receive_time() -> None:
    event = to_liquidation(
        _venue(ts=None), seq=1, received_at=1_700_000_000_200, coverage="snapshot"
    )
    assert event.ts == 1_700_000_000_200


def test_unsized_event_cannot_be_published() -> None:
    with pytest.raises(UnsizedLiquidation, match="contract size missing"):
        to_liquidation(
            _venue(quantity=None, size_usd=None, contracts=-23.0),
            seq=1,
            received_at=1,
            coverage="snapshot",
        )


def test_published_type_is_the_spec_schema() -> None:
    assert Liquidation.__struct_fields__ == (
        "id",
        "seq",
        "exchange",
        "symbol",
        "market",
        "side",
        "price",
        "quantity",
        "size_usd",
        "ts",
        "received_at",
        "cascade_score",
        "coverage",
    )


def test_a_decoded_cascade_score_must_be_0_to_10() -> None:
    """The bound lives on the model, so the OpenAPI schema derived from it says it too."""
    import msgspec

    from purpleflea.server.openapi import document

    wire = encode(
        to_liquidation(_venue(), seq=1, received_at=1, coverage="snapshot", cascade_score=10)
    )
    assert decode_liquidation(wire).cascade_score == 10
    with pytest.raises(msgspec.ValidationError, match="cascade_score"):
        decode_liquidation(wire.replace(b'"cascade_score":10', b'"cascade_score":11'))
    schema = document("test", exchanges=("sim",))["components"]["schemas"]["Liquidation"]
    assert schema["properties"]["cascade_score"] == {
        "type": "integer",
        "minimum": 0,
        "maximum": 10,
        "default": 0,
    }
    assert schema["required"] == list(Liquidation.__struct_fields__)
