"""Price impact of forced orders: how big, and how it unfolds in time.

A liquidation hands a position to the exchange's liquidation engine, which works it into the
book over a few seconds. The impact of a liquidated notional ``usd`` (see :func:`log_move`) is
first *pending*; it executes at rate ``1/execution_ms`` (exponentially); each executed part
moves the price, a share ``permanent`` for good and the rest transiently, decaying with
``half_life_ms`` as liquidity refills. Three numbers per market describe the state — applied
permanent, applied transient, pending — and :class:`ImpactKernel` rolls them forward in closed
form, so a whole block of steps is computed at once.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]


def log_move(usd: float, depth_usd: float, scale: float = 1.0) -> float:
    """Log-price move of a market order of ``usd`` in a market whose 1% depth is ``depth_usd``.

    Linear up to the depth (``usd == depth`` moves 1%), then square-root (the empirical
    square-root law), so even liquidating a whole market's open interest moves it by tens of
    percent rather than wiping the price out.
    """
    ratio = usd / depth_usd
    return 0.01 * scale * (ratio if ratio <= 1.0 else math.sqrt(ratio))


@dataclass(frozen=True, slots=True)
class ImpactKernel:
    """Closed-form evolution of (permanent, transient, pending) impact over ``t`` ms."""

    permanent: float = 0.4
    half_life_ms: float = 120_000.0
    execution_ms: float = 6_000.0

    def _coefficients(self, t_ms: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray]:
        """After ``t_ms``: share of pending executed, transient carried, fresh transient."""
        lam, mu = 1.0 / self.execution_ms, math.log(2.0) / self.half_life_ms
        e_lam, e_mu = np.exp(-lam * t_ms), np.exp(-mu * t_ms)
        return 1.0 - e_lam, e_mu, (lam / (lam - mu)) * (e_mu - e_lam)

    def level(
        self,
        perm: FloatArray | float,
        trans: FloatArray | float,
        pend: FloatArray | float,
        t_ms: FloatArray,
    ) -> FloatArray:
        """Applied impact (log units) ``t_ms`` after the state (perm, trans, pend)."""
        executed, carry, fresh = self._coefficients(t_ms)
        keep = self.permanent
        result: FloatArray = (
            perm + keep * pend * executed + trans * carry + (1 - keep) * pend * fresh
        )
        return result

    def path(self, t_ms: FloatArray) -> ImpactPath:
        """The coefficients at the fixed times ``t_ms`` (a block's step offsets), computed
        once: :meth:`ImpactPath.level` is then :meth:`level` without its exponentials."""
        executed, carry, fresh = self._coefficients(t_ms)
        return ImpactPath(self.permanent, executed, carry, fresh)

    def roll_one(
        self, perm: float, trans: float, pend: float, t_ms: float
    ) -> tuple[float, float, float]:
        """:meth:`roll` for one market, in Python floats (the liquidation loop calls it on
        every liquidation step, where numpy's per-call cost on 0-d arrays dominated)."""
        lam, mu = 1.0 / self.execution_ms, math.log(2.0) / self.half_life_ms
        e_lam, e_mu = math.exp(-lam * t_ms), math.exp(-mu * t_ms)
        executed, carry, fresh = 1.0 - e_lam, e_mu, (lam / (lam - mu)) * (e_mu - e_lam)
        keep = self.permanent
        return (
            perm + keep * pend * executed,
            trans * carry + (1 - keep) * pend * fresh,
            pend * (1.0 - executed),
        )

    def roll(
        self, perm: FloatArray, trans: FloatArray, pend: FloatArray, t_ms: float
    ) -> tuple[FloatArray, FloatArray, FloatArray]:
        """The state (perm, trans, pend) ``t_ms`` later."""
        executed, carry, fresh = self._coefficients(np.array(t_ms))
        keep = self.permanent
        return (
            perm + keep * pend * executed,
            trans * carry + (1 - keep) * pend * fresh,
            pend * (1.0 - executed),
        )


@dataclass(frozen=True, slots=True)
class ImpactPath:
    """:meth:`ImpactKernel.level` at fixed times (1-D ``executed``, ``carry``, ``fresh``, from
    :meth:`ImpactKernel.path`). The simulator asks for the same step offsets on every block,
    and on every liquidation step for the rest of the block; the kernel's exponentials of them
    were ~40 % of each call. The sums below are :meth:`ImpactKernel.level`'s, operation for
    operation (each product and sum the same two floats; only the order of a product's or a
    sum's two operands may differ, which IEEE arithmetic does not see), into one buffer
    instead of a temporary for each, so the levels are the same bits."""

    keep: float
    executed: FloatArray
    carry: FloatArray
    fresh: FloatArray

    def level(self, perm: float, trans: float, pend: float, count: int) -> FloatArray:
        """One market's applied impact at the first ``count`` times."""
        keep = self.keep
        out: FloatArray = np.multiply(self.executed[:count], keep * pend)
        out += perm
        out += np.multiply(self.carry[:count], trans)
        out += np.multiply(self.fresh[:count], (1 - keep) * pend)
        return out

    def levels(self, perm: FloatArray, trans: FloatArray, pend: FloatArray) -> FloatArray:
        """Every market's applied impact (times x markets) from each market's state."""
        keep = self.keep
        executed, carry, fresh = (c[:, None] for c in (self.executed, self.carry, self.fresh))
        out: FloatArray = np.multiply(executed, keep * pend)
        out += perm
        term = np.multiply(carry, trans)
        out += term
        out += np.multiply(fresh, (1 - keep) * pend, out=term)
        return out
