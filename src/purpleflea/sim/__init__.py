"""The market simulator: the offline source of liquidations and their ground truth.

275 perpetual markets (real tickers, realistic prices, volatilities, open interest and depth),
leveraged trader cohorts with a 2x-125x leverage mix, a clustered-volatility price process with
jumps, and a liquidation engine whose forced orders move the price, so cascades emerge. Output
uses the live event model: :class:`~purpleflea.model.VenueLiquidation` (attributed to a real
exchange id with its native symbol, ``market`` = ``BASE-PERP``, id ``sim-<seed>-<n>``) and
:class:`~purpleflea.model.MarketSnapshot` (open interest + mark price per exchange listing).
Requires numpy (the ``server`` extra). The same :class:`SimConfig` always gives the same stream.

Public API (stable)::

    from purpleflea.sim import Simulator, SimConfig, paced, generate_history

    sim = Simulator(SimConfig(seed=7, n_markets=275))     # or Simulator(seed=7)
    for step in sim.run(60_000):          # SimStep: .ts (ms, end of step), .liquidations
        ...                               # (tuple[VenueLiquidation]), .snapshots (every 60 s)
    sim.now_ms                            # time of the last step yielded
    sim.mark("BTC-PERP")                  # mark price now
    sim.truth.positions("BTC-PERP")       # list[TruePosition]: the open cohorts now
    sim.truth.notional_at_risk("BTC-PERP", "long", edges)   # np.ndarray, USD per bucket
    sim.truth.open_interest("BTC-PERP")   # as an exchange reports it: the larger side, coins
    sim.truth.cascades()                  # list[TrueCascade] over by now: the impact definition
    truth.wave_cascades(stream, depth, ...)  # the wave definition, on a recorded stream

    live = Simulator(SimConfig.served(start_ms=now_ms))  # what `serve` runs (crash episode)
    async for step in paced(live, wall_origin_ms=now_ms):
        ...                               # live: 250 ms steps at wall-clock pace

    state = sim.capture_state()           # between blocks; resume.save/load keep it in a file
    Simulator.from_state(replace(config, start_ms=later, epoch=1), state)  # continues it

    summary = await generate_history(store, days=30, seed=0, scorer=None)  # fast bulk

    raw = sim.next_block()                # fast path: one block's events as numpy arrays
    sim.venue_events(raw)                 # ... as VenueLiquidation structs

Each event's ``liquidated_user`` is ``cohort-<TruePosition.id>``: the true position it came from.

Steps are 250 ms by default (``step_ms``); ``steps()`` never ends, ``run(ms)`` stops.
Knobs: ``volatility_scale``, ``cascade_rate``, ``impact_scale`` (:meth:`SimConfig.demo` turns
them up), ``crash_start_ms`` (one crash episode, :mod:`purpleflea.sim.crash`). Definitions of
positions, liquidation prices and true cascades are in :mod:`purpleflea.sim.truth`; the model
itself in :mod:`purpleflea.sim.process`.
"""

from __future__ import annotations

from purpleflea.sim.history import HistorySummary, generate_history
from purpleflea.sim.live import paced
from purpleflea.sim.markets import EXCHANGE_SHARES, Listing, MarketSpec, universe
from purpleflea.sim.process import DEFAULT_START_MS, SimConfig, SimStep, Simulator
from purpleflea.sim.truth import Flows, TrueCascade, TruePosition, Truth

__all__ = [
    "DEFAULT_START_MS",
    "EXCHANGE_SHARES",
    "Flows",
    "HistorySummary",
    "Listing",
    "MarketSpec",
    "SimConfig",
    "SimStep",
    "Simulator",
    "TrueCascade",
    "TruePosition",
    "Truth",
    "generate_history",
    "paced",
    "universe",
]
