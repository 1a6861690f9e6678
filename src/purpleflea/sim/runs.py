"""Bookkeeping of liquidation runs, from which the true cascades are taken.

See :mod:`purpleflea.sim.truth` for the definition of a run and of a true cascade.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from purpleflea.sim.events import NO_RUN, RawBlock
from purpleflea.sim.impact import ImpactKernel
from purpleflea.sim.truth import TrueCascade

FloatArray = npt.NDArray[np.float64]


@dataclass(slots=True)
class Run:
    """An open run of liquidations on one market and side."""

    uid: int
    market: int
    side: int  # +1 long, -1 short
    start_price: float
    first_step_ms: int
    last_step_ms: int
    start_ms: int = 2**62  # first and last event times, filled in from each block's events
    end_ms: int = 0
    end_price: float = 0.0
    notional_usd: float = 0.0
    events: int = 0
    cohorts: int = 0
    impact_driven: int = 0
    # The run's own price impact (log units, signed) as of last_step_ms.
    own_permanent: float = 0.0
    own_transient: float = 0.0
    own_pending: float = 0.0


class RunTracker:
    """Groups liquidations into runs and keeps the runs that are true cascades."""

    def __init__(
        self,
        *,
        names: tuple[str, ...],
        depth_usd: FloatArray,
        gap_ms: int,
        min_depth: float,
        kernel: ImpactKernel,
    ) -> None:
        self._names = names
        self._depth = depth_usd
        self._gap = gap_ms
        self._min_depth = min_depth
        self._kernel = kernel
        self._open: dict[tuple[int, int], Run] = {}
        self._live: dict[int, Run] = {}  # open or finished, not yet judged
        self._finished: list[Run] = []
        self._next_uid = 1
        #: The kernel's (executed, carry, fresh) after each time a run has rolled over.
        self._coefficients: dict[int, tuple[float, float, float]] = {}
        self.cascades: list[TrueCascade] = []

    def record(
        self,
        market: int,
        side: int,
        liq: FloatArray,
        impact: float,
        mark: float,
        step_end: int,
    ) -> int:
        """Add the cohorts of ``side`` liquidated on ``market`` at one step; returns the run uid.

        ``impact`` is their total signed log-price impact, applied from the next step on.
        """
        run = self._open.get((market, side))
        if run is not None and step_end - run.last_step_ms > self._gap:
            self._finish(run)
            run = None
        if run is None:
            run = Run(self._next_uid, market, side, mark, step_end, step_end)
            self._next_uid += 1
            self._open[(market, side)] = run
        run.own_permanent, run.own_transient, run.own_pending = self._roll(
            run.own_permanent, run.own_transient, run.own_pending, step_end - run.last_step_ms
        )
        without = mark * math.exp(-(run.own_permanent + run.own_transient))
        driven = liq < without if side > 0 else liq > without
        run.impact_driven += int(np.count_nonzero(driven))
        run.cohorts += liq.size
        run.end_price = mark
        run.last_step_ms = step_end
        run.own_pending += impact
        self._live[run.uid] = run
        return run.uid

    def _roll(
        self, perm: float, trans: float, pend: float, t_ms: int
    ) -> tuple[float, float, float]:
        """:meth:`ImpactKernel.roll` of one run's own impact, in Python floats: the kernel's
        coefficients for ``t_ms`` (whole steps, up to the gap: a few dozen values) are
        computed once by the kernel itself and kept, and the sums are its own, so the result
        is the same bits without four 0-d arrays per liquidation step."""
        coefficients = self._coefficients.get(t_ms)
        if coefficients is None:
            path = self._kernel.path(np.array(float(t_ms)))
            coefficients = self._coefficients[t_ms] = (
                float(path.executed),
                float(path.carry),
                float(path.fresh),
            )
        executed, carry, fresh = coefficients
        keep = self._kernel.permanent
        return (
            perm + keep * pend * executed,
            trans * carry + (1 - keep) * pend * fresh,
            pend * (1.0 - executed),
        )

    def end_block(self, raw: RawBlock) -> None:
        """Take in the block's events, then close runs idle for a gap by the block's end."""
        if raw.ts.size:
            uids, first = np.unique(raw.run, return_index=True)
            last = raw.ts.size - 1 - np.unique(raw.run[::-1], return_index=True)[1]
            slot = np.searchsorted(uids, raw.run)
            counts = np.bincount(slot, minlength=uids.size)
            # A run's notional is its events' (each at the price it was executed at, not at a
            # venue's bankruptcy price).
            usd = np.bincount(slot, weights=raw.filled_usd, minlength=uids.size)
            for uid, i, j, count, notional in zip(
                uids.tolist(),
                first.tolist(),
                last.tolist(),
                counts.tolist(),
                usd.tolist(),
                strict=True,
            ):
                if uid == NO_RUN:
                    continue
                run = self._live[uid]
                run.events += count
                run.notional_usd += notional
                run.start_ms = min(run.start_ms, int(raw.ts[i]))
                run.end_ms = max(run.end_ms, int(raw.ts[j]))
        for run in list(self._open.values()):
            if run.last_step_ms + self._gap <= raw.end_ms:
                self._finish(run)
        # A finished run's last step is a gap (longer than any event delay) in the past, so
        # all its events are in by now.
        for run in self._finished:
            self._keep_if_cascade(run)
            del self._live[run.uid]
        self._finished.clear()

    def _finish(self, run: Run) -> None:
        del self._open[(run.market, run.side)]
        self._finished.append(run)

    def _keep_if_cascade(self, run: Run) -> None:
        big = run.notional_usd >= self._min_depth * float(self._depth[run.market])
        if run.impact_driven < 2 or not big:
            return
        self.cascades.append(
            TrueCascade(
                market=self._names[run.market],
                side="long" if run.side > 0 else "short",
                start_ms=run.start_ms,
                end_ms=run.end_ms,
                notional_usd=run.notional_usd,
                events=run.events,
                cohorts=run.cohorts,
                impact_driven=run.impact_driven,
                start_price=run.start_price,
                end_price=run.end_price,
                known_ms=run.last_step_ms + self._gap,
            )
        )
