"""Fill in: the venue's share of the simulated market, served by ``local_server.py``.

A subclass of the local server holding a share of each of the simulator's true positions
(``sim.truth.positions()``) at addresses stable across restarts, publishing trades that name
them and the liquidation fills of those that are liquidated; ``observe(sim, step)`` after each
simulator step. ``positions.SAMPLING.simulated`` builds it (imported lazily: the simulator
imports the registry). Without ``positions.py``, delete this file.

Example: ``venues/hyperliquid/simulated.py``.
"""
