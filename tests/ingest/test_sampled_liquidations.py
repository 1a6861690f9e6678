"""A sampled position that vanished while the market traded through its liquidation price is
a liquidation; one closed before the market got there is not."""

from __future__ import annotations

from purpleflea.ingest.sampled_liquidations import PriceExtremes, vanished
from purpleflea.model import Side
from purpleflea.positions import Position

T0 = 1_760_000_000_000


def _held(side: Side, size: float, liquidation: float | None) -> Position:
    return Position(
        account="0xabc",
        exchange="venue",
        symbol="BTC",
        market="BTC-PERP",
        side=side,
        size=size,
        entry_price=100_000,
        margin="isolated",
        leverage=20,
        liquidation_price=liquidation,
        notional_usd=size * 100_000,
    )


def _prices(*moves: tuple[int, float]) -> PriceExtremes:
    extremes = PriceExtremes(keep_ms=600_000)
    for offset, price in moves:
        extremes.add("BTC-PERP", T0 + offset, price)
    return extremes


def test_a_long_gone_after_the_market_traded_below_its_price_was_liquidated() -> None:
    extremes = _prices((1_000, 99_000), (5_000, 95_900), (9_000, 97_000))
    [event] = vanished([_held("long", 2.0, 96_000)], [], extremes, since_ms=T0, now_ms=T0 + 10_000)
    assert (event.side, event.price, event.quantity, event.size_usd) == (
        "long",
        96_000,
        2.0,
        192_000,
    )
    assert (event.market, event.liquidated_user, event.ts) == ("BTC-PERP", "0xabc", T0 + 10_000)
    again = vanished([_held("long", 2.0, 96_000)], [], extremes, since_ms=T0, now_ms=T0 + 10_000)
    assert [e.id for e in again] == [event.id]  # the same poll pair, the same id


def test_a_partial_liquidation_is_sized_by_what_vanished() -> None:
    extremes = _prices((1_000, 104_500))
    [event] = vanished(
        [_held("short", 3.0, 104_000)],
        [_held("short", 1.0, 104_000)],
        extremes,
        since_ms=T0,
        now_ms=T0 + 2_000,
    )
    assert (event.side, event.quantity) == ("short", 2.0)


def test_closed_before_the_market_got_there_or_unchanged_is_no_liquidation() -> None:
    extremes = _prices((1_000, 96_500))
    before = [_held("long", 2.0, 96_000)]
    assert vanished(before, [], extremes, since_ms=T0, now_ms=T0 + 2_000) == []
    assert vanished(before, before, _prices((1_000, 90_000)), since_ms=T0, now_ms=T0 + 2_000) == []
    assert vanished([_held("long", 2.0, None)], [], extremes, since_ms=T0, now_ms=T0 + 2_000) == []
    # Nothing traded in the interval (or it is forgotten): no evidence, no event.
    assert vanished(before, [], _prices((60_000, 90_000)), since_ms=T0, now_ms=T0 + 2_000) == []


def test_a_market_that_stopped_trading_is_forgotten_after_keep_ms() -> None:
    # Each market's seconds were trimmed only by its own next trade: a coin delisted (or no
    # longer traded) kept up to keep_ms of seconds (1,200 at the default 20 min) for good.
    extremes = PriceExtremes(keep_ms=60_000)
    for coin in range(100):  # each traded for a minute, then never again
        for second in range(60):
            extremes.add(f"C{coin}-PERP", (coin * 60 + second) * 1_000, 1.0 + coin)
    last = 100 * 60 * 1_000
    for second in range(180):  # BTC trades on for three minutes
        extremes.add("BTC-PERP", last + second * 1_000, 100_000.0)
    assert list(extremes._seconds) == ["BTC-PERP"]
    assert extremes.between("C99-PERP", 0, last) is None
    assert extremes.between("BTC-PERP", last, last + 180_000) == (100_000.0, 100_000.0)
