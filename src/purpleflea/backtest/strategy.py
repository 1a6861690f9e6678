"""Strategies: the cascade playbook and the interface a user strategy implements.

A strategy is any object with ``on_event(event, score, broker)`` and
``on_cascade(alert, broker)``; ``on_tick(now_ms, broker)`` is optional and called once per
second of stream time. A strategy with ``use_heatmaps(model)`` is handed the replay's
:class:`~purpleflea.engine.heatmap.HeatmapModel` before the first event (the backtest then
runs the heatmap as the live server does) and may query it from any callback:
``model.heatmap(market)``, ``model.fuel(market, side, price, pct)``; it knows only the open
interest replayed so far, and a market before its first stored row raises ``ValueError``.
``score`` is the engine's cascade score of the event's market and side right after it (the
stored ``cascade_score`` is ignored: the backtest rescores with the same engine code as live).
Strategies trade through the :class:`~purpleflea.backtest.broker.Broker`.
"""

from __future__ import annotations

import importlib
import math
import os
import sys
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from purpleflea.backtest.broker import Broker
from purpleflea.model import CascadeAlert, Liquidation


@runtime_checkable
class Strategy(Protocol):
    def on_event(self, event: Liquidation, score: int, broker: Broker) -> None: ...

    def on_cascade(self, alert: CascadeAlert, broker: Broker) -> None: ...


@dataclass(slots=True)
class Playbook:
    """Trade with the cascade, exit on exhaustion, optionally flip for the bounce.

    Enters when an event's score reaches ``threshold``: short when longs are being liquidated,
    long when shorts are. Exits when the engine reports the cascade ``exhausted`` (or after
    ``max_hold_s`` as a guard). With ``flip``, the exit opens the opposite position, held for
    ``flip_hold_s``. One entry per cascade: a market and side re-arms only once an event of
    it scores below the threshold again.
    """

    threshold: int = 7
    flip: bool = False
    notional_usd: float = 10_000.0
    max_hold_s: float = 1800.0
    flip_hold_s: float = 300.0
    _spent: set[tuple[str, str]] = field(default_factory=set)

    def __post_init__(self) -> None:
        if not (math.isfinite(self.notional_usd) and self.notional_usd > 0):
            raise ValueError(
                f"Playbook: notional_usd must be a positive number of USD, got {self.notional_usd}"
            )

    def on_event(self, event: Liquidation, score: int, broker: Broker) -> None:
        key = (event.market, event.side)
        if score < self.threshold:
            self._spent.discard(key)
        elif key not in self._spent and broker.position(event.market) is None:
            direction = -1 if event.side == "long" else 1
            broker.open(event.market, direction, self.notional_usd, tag=f"with:{event.side}")
            self._spent.add(key)

    def on_cascade(self, alert: CascadeAlert, broker: Broker) -> None:
        if alert.status != "exhausted":
            return
        position = broker.position(alert.market)
        if position is None or position.tag != f"with:{alert.side}":
            return
        broker.close(alert.market, "exhausted")
        if self.flip:
            broker.open(alert.market, -position.direction, self.notional_usd, tag="flip")

    def on_tick(self, now_ms: int, broker: Broker) -> None:
        for position in list(broker.positions.values()):
            held = (now_ms - position.entry_ts) / 1000.0
            if position.tag == "flip" and held >= self.flip_hold_s:
                broker.close(position.market, "flip done")
            elif position.tag != "flip" and held >= self.max_hold_s:
                broker.close(position.market, "max hold")


def load_strategy(spec: str) -> Strategy:
    """Instantiate ``module:Class`` (no arguments) as a strategy; errors name what is wrong.

    The module is looked up in the current folder first, then on ``sys.path`` (as ``python -m``
    does): a ``mystrat.py`` beside the command is ``--strategy mystrat:Class``. The
    ``purpleflea`` console script's own ``sys.path`` holds its folder, not the current one."""
    module_name, sep, class_name = spec.partition(":")
    if not sep or not module_name or not class_name:
        raise ValueError(f"--strategy {spec!r}: expected 'module:Class'")
    here = os.getcwd()
    if here not in sys.path and "" not in sys.path:
        sys.path.insert(0, here)
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ValueError(
            f"--strategy {spec!r}: cannot import {module_name!r} (looked in the current folder "
            f"{here} and sys.path): {exc}"
        ) from exc
    cls = getattr(module, class_name, None)
    if cls is None:
        raise ValueError(f"--strategy {spec!r}: {module_name} has no {class_name!r}")
    if not isinstance(cls, type):
        raise ValueError(f"--strategy {spec!r}: {class_name!r} is not a class")
    try:
        strategy = cls()
    except TypeError as exc:  # its __init__ wants arguments: a traceback said so before
        raise ValueError(
            f"--strategy {spec!r}: {class_name}() failed: {exc} (a strategy is made without "
            "arguments: give its parameters defaults)"
        ) from exc
    if not isinstance(strategy, Strategy):
        raise ValueError(f"--strategy {spec!r}: {class_name} needs on_event and on_cascade methods")
    return strategy
