"""Backtesting: replay stored history through the live cascade engine into a strategy.

``run_backtest(events, strategy)`` is the whole thing for in-memory events (and open interest);
the ``purpleflea backtest`` command reads a store page by page with :func:`replay_store`.
"""

from __future__ import annotations

from collections.abc import Iterable

from purpleflea.backtest.broker import DEFAULT_LATENCY_MS, Broker, BrokerError, Costs, Trade
from purpleflea.backtest.report import Metrics, Report, compute_metrics, equity_curve
from purpleflea.backtest.runner import Replay, replay_store
from purpleflea.backtest.strategy import Playbook, Strategy, load_strategy
from purpleflea.engine import CascadeConfig, CascadeEngine
from purpleflea.engine.heatmap_feed import HeatmapFeed
from purpleflea.model import Liquidation
from purpleflea.store.base import OpenInterest
from purpleflea.store.pages import open_interest_pages, store_pages
from purpleflea.venues import registry

__all__ = [
    "Broker",
    "BrokerError",
    "Costs",
    "Metrics",
    "Playbook",
    "Replay",
    "Report",
    "Strategy",
    "Trade",
    "load_strategy",
    "open_interest_pages",
    "replay_store",
    "result",
    "run_backtest",
    "start",
    "store_pages",
]


def start(
    strategy: Strategy,
    *,
    costs: Costs | None = None,
    engine_config: CascadeConfig | None = None,
    initial_equity: float = 100_000.0,
    heatmap: bool | None = None,
    latency_ms: int = DEFAULT_LATENCY_MS,
) -> Replay:
    """A fresh replay: a new engine (the live code) and broker around ``strategy``.

    ``heatmap`` runs the live heatmap feed over the replayed open interest and marks, so the
    engine's scores include the fuel ahead as live, and hands its model to a strategy that has
    ``use_heatmaps(model)``; by default it runs when the strategy has that method.
    ``latency_ms``: orders fill at the market's price that long after the decision
    (:class:`Broker`).
    """
    broker = Broker(costs=costs or Costs(), initial_equity=initial_equity, latency_ms=latency_ms)
    fill_priced = registry.fill_priced()
    engine = CascadeEngine(engine_config, fill_priced=fill_priced)
    use_heatmaps = getattr(strategy, "use_heatmaps", None)
    if heatmap is None:
        heatmap = use_heatmaps is not None
    feed = HeatmapFeed(fuel=engine) if heatmap else None
    if feed is not None and use_heatmaps is not None:
        use_heatmaps(feed.model)
    return Replay(
        engine=engine, strategy=strategy, broker=broker, heatmaps=feed, fill_priced=fill_priced
    )


def result(replay: Replay, params: dict[str, object]) -> Report:
    """The report of a finished replay."""
    trades = replay.broker.trades
    start_ts = replay.first_ts
    end_ts = max(replay.last_ts, start_ts)
    metrics = compute_metrics(
        trades,
        initial_equity=replay.broker.initial_equity,
        start_ts=start_ts,
        end_ts=end_ts,
        events=replay.events,
        alerts=len(replay.alerts),
        cascades=sum(1 for alert in replay.alerts if alert.status == "started"),
    )
    return Report(
        metrics=metrics,
        params=params,
        trades=list(trades),
        equity=equity_curve(trades, replay.broker.initial_equity, start_ts),
    )


def run_backtest(
    events: Iterable[Liquidation],
    strategy: Strategy,
    *,
    costs: Costs | None = None,
    engine_config: CascadeConfig | None = None,
    params: dict[str, object] | None = None,
    open_interest: Iterable[OpenInterest] = (),
    heatmap: bool | None = None,
    latency_ms: int = DEFAULT_LATENCY_MS,
) -> Report:
    """Replay ``events`` (ascending seq) into ``strategy`` and report; ``open_interest`` rows
    (ascending ts) reach the engine as each one's time comes (see :class:`Replay`), and the
    heatmap runs as :func:`start` says."""
    replay = start(
        strategy, costs=costs, engine_config=engine_config, heatmap=heatmap, latency_ms=latency_ms
    )
    replay.add_open_interest(open_interest)
    replay.feed(events)
    replay.finish()
    return result(replay, params or {})
