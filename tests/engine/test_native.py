"""The compiled cascade engine (scripts/build_native.py) is the pure engine, only faster."""

from __future__ import annotations

import importlib
import random
from pathlib import Path

import pytest

import purpleflea.engine
from purpleflea.engine import cascade as pure

ENGINE_DIR = Path(pure.__file__).parent
BUILT = sorted(ENGINE_DIR.glob("_cascade_native*"))
T0 = 1_700_000_000_000

pytestmark = pytest.mark.skipif(
    not BUILT,
    reason="NO COMPILED ENGINE: scripts/build_native.py was not run or could not compile "
    "(no C compiler or mypyc); the pure-Python engine is in use",
)


def _stream(seed: int) -> list[tuple[str, tuple[object, ...]]]:
    """Calm liquidations, bursts walking through price levels, and open-interest snapshots."""
    rng = random.Random(seed)
    markets = ["BTC-PERP", "ETH-PERP", "PEPE-PERP"]
    stream: list[tuple[str, tuple[object, ...]]] = []
    t, next_snapshot = T0, T0
    for _ in range(3_000):
        t += int(rng.expovariate(1 / 3_000))
        while next_snapshot <= t:
            for market in markets:
                stream.append(("oi", (market, rng.lognormvariate(16, 1))))
            next_snapshot += 60_000
        market, side = rng.choice(markets), rng.choice(["long", "short"])
        if rng.random() < 0.03:
            price = 100.0
            for _ in range(rng.randint(20, 120)):
                t += rng.randint(20, 900)
                if rng.random() < 0.1:  # the next positions, further away
                    price *= 1 - 0.003 if side == "long" else 1 + 0.003
                size = rng.lognormvariate(11, 1.5)
                stream.append(("event", (market, side, size, price, t, rng.choice("ab"))))
        stream.append(("event", (market, side, rng.lognormvariate(8, 2), 100.0, t, "bybit")))
    return stream


def _replay(
    module: object, stream: list[tuple[str, tuple[object, ...]]]
) -> tuple[list[int], list[object]]:
    engine = module.CascadeEngine(module.CascadeConfig())  # type: ignore[attr-defined]
    scores: list[int] = []
    alerts: list[object] = []
    second = T0 // 1000
    for kind, item in stream:
        if kind == "oi":
            engine.set_open_interest(*item)
            continue
        ts = int(item[4])  # type: ignore[call-overload]
        while second < ts // 1000:
            second += 1
            alerts += engine.tick(second * 1000)
        scores.append(engine.observe(*item))
        alerts += engine.drain_alerts()
    alerts += engine.tick((second + 120) * 1000)
    return scores, alerts


def test_the_compiled_engine_is_current_and_in_use() -> None:
    assert purpleflea.engine.NATIVE, (
        "a compiled engine is present but not from the current cascade.py: "
        "run scripts/build_native.py (scripts/setup does)"
    )


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_compiled_and_pure_engines_give_identical_scores_and_alerts(seed: int) -> None:
    native = importlib.import_module("purpleflea.engine._cascade_native")
    stream = _stream(seed)
    pure_scores, pure_alerts = _replay(pure, stream)
    native_scores, native_alerts = _replay(native, stream)
    assert native_scores == pure_scores
    assert native_alerts == pure_alerts
    # The streams do reach cascades, alerts and their exhaustion.
    assert max(pure_scores) >= 7
    assert any(a.status == "exhausted" for a in pure_alerts)  # type: ignore[attr-defined]
