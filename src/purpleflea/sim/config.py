"""What fixes a simulated stream, and what one step of it carries."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from purpleflea.model import MarketSnapshot, VenueLiquidation

DAY_MS = 86_400_000
#: 2025-01-01T00:00:00Z: the default start, so a seed alone fixes the stream.
DEFAULT_START_MS = 1_735_689_600_000


@dataclass(frozen=True, slots=True)
class SimConfig:
    """Everything that fixes a simulated stream (same config -> same bytes).

    Time: steps of ``step_ms`` computed ``block_ms`` at a time (traders open and close at
    block starts), snapshots every ``snapshot_ms``; the stream starts at ``start_ms`` after an
    unseen ``warmup_ms`` that brings the book to its steady state. Knobs:
    ``volatility_scale`` multiplies every volatility and jump size; ``cascade_rate`` multiplies
    the rate of price shocks that start cascades; ``impact_scale`` multiplies the price impact
    of forced orders. :meth:`demo` turns them up so a live demo shows cascades within minutes.
    ``cascade_gap_ms`` and ``cascade_min_depth`` define the true cascades
    (:mod:`purpleflea.sim.truth`). ``epoch`` picks the random stream with the seed: 0 is the
    seed's own stream; a restarted live feed takes a new epoch, so it never replays a stream
    its store already holds (:meth:`~purpleflea.sim.Simulator.from_state`).
    ``crash_start_ms`` schedules one crash episode (:mod:`purpleflea.sim.crash`) at that time.
    """

    seed: int = 0
    n_markets: int = 275
    start_ms: int = DEFAULT_START_MS
    step_ms: int = 250
    block_ms: int = 60_000
    snapshot_ms: int = 60_000
    volatility_scale: float = 1.0
    cascade_rate: float = 1.0
    impact_scale: float = 1.0
    warmup_ms: int = 7_200_000
    cascade_gap_ms: int = 60_000
    cascade_min_depth: float = 0.25
    epoch: int = 0
    crash_start_ms: int | None = None

    def __post_init__(self) -> None:
        if self.step_ms <= 0 or self.block_ms <= 0 or self.block_ms % self.step_ms:
            raise ValueError(
                f"step_ms ({self.step_ms}) must be > 0 and divide block_ms ({self.block_ms})"
            )
        if self.snapshot_ms <= 0 or self.snapshot_ms % self.block_ms:
            raise ValueError(
                f"snapshot_ms ({self.snapshot_ms}) must be a multiple of block_ms ({self.block_ms})"
            )
        if self.warmup_ms < 0 or self.warmup_ms % self.block_ms:
            raise ValueError(
                f"warmup_ms ({self.warmup_ms}) must be >= 0 and a multiple of block_ms "
                f"({self.block_ms})"
            )
        if self.seed < 0 or self.epoch < 0:
            raise ValueError(f"seed ({self.seed}) and epoch ({self.epoch}) must be >= 0")
        for name in ("volatility_scale", "cascade_rate", "impact_scale"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")

    @classmethod
    def demo(cls, **overrides: int | float) -> SimConfig:
        """A livelier market for demos: more shocks and stronger impact."""
        values: dict[str, int | float] = {
            "volatility_scale": 1.5,
            "cascade_rate": 60.0,
            "impact_scale": 2.0,
        }
        values.update(overrides)
        return cls(**values)  # type: ignore[arg-type]

    @classmethod
    def served(cls, **overrides: int | float | None) -> SimConfig:
        """The market ``purpleflea serve`` runs: the realistic one (default knobs) with one
        crash episode starting at ``start_ms`` (pass ``crash_start_ms=None`` for none;
        the realistic market alone can be quiet for minutes), computed in blocks of 2.5 s (a
        restart resumes within 2.5 s of where the feed stopped: in a crash, a market can move
        more than 1% in 10 s). Open interest and marks every 10 s, as a live feed refreshes
        them (Bybit's tickers push open interest several times a second): the estimated heatmap
        and the cascade engine's size term have them 10 s after the start, not a minute."""
        start = overrides.get("start_ms", DEFAULT_START_MS)
        values: dict[str, int | float | None] = {
            "block_ms": 2_500,
            "snapshot_ms": 10_000,
            "crash_start_ms": int(start or 0),
        }
        values.update(overrides)
        return cls(**values)  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class SimStep:
    """One step of simulated time: what happened in ``(ts - step_ms, ts]``."""

    ts: int
    liquidations: tuple[VenueLiquidation, ...]
    snapshots: tuple[MarketSnapshot, ...]


def random_stream(config: SimConfig) -> np.random.Generator:
    """The random generator of ``config``'s stream: its seed's, or (seed, epoch)'s."""
    return np.random.default_rng(config.seed if config.epoch == 0 else [config.seed, config.epoch])


def event_id_prefix(config: SimConfig) -> str:
    """``sim-<seed>-<start_ms>-``: the same run always gives the same ids (dedupe works on a
    replay), while a restarted server, whose run starts at a new time, never collides with the
    events it stored before."""
    return f"sim-{config.seed}-{config.start_ms}-"
