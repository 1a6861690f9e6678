"""A published event (and a cascade alert) built from its seq: the storage, bus and stream
tests' common samples; a normalizer's events as the live path stores them."""

from __future__ import annotations

from purpleflea.model import CascadeAlert, Liquidation, VenueLiquidation
from purpleflea.venues.registry import coverage_of

T0 = 1_700_000_040_000  # a minute boundary


def stored_event(seq: int, *, prefix: str = "test", **overrides: object) -> Liquidation:
    """Event ``seq``: markets, exchanges and sides vary with it, sizes grow with it."""
    fields: dict[str, object] = {
        "id": f"{prefix}:{seq}",
        "seq": seq,
        "exchange": "binance_usdm" if seq % 2 else "bybit",
        "symbol": "BTCUSDT",
        "market": "BTC-PERP" if seq % 3 else "ETH-PERP",
        "side": "long" if seq % 4 else "short",
        "price": 50_000.0,
        "quantity": 0.1 * seq,
        "size_usd": 5_000.0 * seq,
        "ts": T0 + seq * 1_000,
        "received_at": T0 + seq * 1_000 + 5,
        "cascade_score": seq % 11,
    }
    fields.update(overrides)
    if "coverage" not in fields:  # looked up only when not given (any exchange name then)
        fields["coverage"] = coverage_of(str(fields["exchange"]))
    return Liquidation(**fields)  # type: ignore[arg-type]


def stored_alert(seq: int, **overrides: object) -> CascadeAlert:
    """Cascade alert ``seq``: a BTC-PERP long cascade started on Binance, $3M in its window."""
    fields: dict[str, object] = {
        "id": "cascade-1",
        "status": "started",
        "market": "BTC-PERP",
        "side": "long",
        "score": 8,
        "peak_score": 8,
        "window_usd": 3_000_000.0,
        "window_s": 60,
        "total_usd": 3_000_000.0,
        "events": 30,
        "started_at": T0,
        "updated_at": T0 + seq,
        "duration_s": 12.0,
        "start_price": 50_000.0,
        "last_price": 48_500.0,
        "price_move_pct": -3.0,
        "exchanges": ("binance_usdm",),
        "message": "BTC-PERP long cascade started",
        "seq": seq,
    }
    fields.update(overrides)
    return CascadeAlert(**fields)  # type: ignore[arg-type]


def stored_live(events: list[VenueLiquidation], received_at: int) -> list[Liquidation]:
    """A normalizer's events as stored live (seq 1, 2, ...), for tests of what an import adds."""
    return [
        Liquidation(
            id=e.id,
            seq=seq,
            exchange=e.exchange,
            symbol=e.symbol,
            market=e.market,
            side=e.side,
            price=e.price,
            quantity=e.quantity or 0.0,
            size_usd=e.size_usd or 0.0,
            ts=e.ts or 0,
            received_at=received_at,
            coverage=coverage_of(e.exchange),
        )
        for seq, e in enumerate(events, 1)
    ]
