"""A scheduled crash episode with the shape of a real one: a wave, a partial bounce, a wave.

Shaped on the recorded 2025-10-10 crash (``shared/data/real/0xknxwledge…``, hourly): Binance
BTC perpetual -3.3% at the 20:00 hour's low, then -11% at the 21:00 hour's low and back to
-1% by its close; SOL -28%, HYPE -49%, DOGE -62% at their lows; Hyperliquid open interest
BTC $4.43B -> $3.00B -> $2.19B (-51%) and SOL -63% over those two hours, and still there the
next morning. The episode here is the same story compressed into tens of minutes (real crash
sessions come in waves minutes apart):

- wave 1 (0-8 min): BTC -0.6% in the first 30 s (a crash's onset is its sharpest move), then
  on to -3.5%;
- partial bounce (8-16 min): back to -2%;
- wave 2 (16-30 min): down to -9%;
- recovery (30-45 min): back to -5%, where it stays.

Other markets move by a multiple (``beta``) of BTC's path: ETH 1.2x, the rest of the top 20
2x, the others 2.5x (meme coins 3x), so alts fall 20-25% at the bottom, less than the real
lows. The exogenous volatility is 2.5x while the episode runs. The forced orders of the
positions it liquidates move prices further (the simulator's impact), as in a real cascade.
Holders de-risk: during the waves an open position closes with a hazard that removes about a
half of the open interest (with the liquidations, about half, as on 2025-10-10), and for
:data:`SLOW_REFILL_MS` from the episode on new positions come back a twentieth as fast, so
open interest stays down for days.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]

_MINUTE = 60_000
#: (minutes from the start, BTC's log move) knots of the episode; linear in between.
KNOTS: tuple[tuple[float, float], ...] = (
    (0.0, 0.0),
    (0.5, -0.006),
    (8.0, -0.035),
    (16.0, -0.02),
    (30.0, -0.09),
    (45.0, -0.05),
)
DURATION_MS = int(KNOTS[-1][0] * _MINUTE)
VOL_BOOST = 2.5
#: Per-minute hazard of an open position closing while a wave falls (~half over 22 minutes).
DERISK_PER_MIN = 0.032
#: From the episode on, empty slots refill 20x slower for this long (real open interest was
#: still at half a day after 2025-10-10).
SLOW_REFILL_MS = 48 * 3_600_000
SLOW_REFILL = 20.0

_KNOT_T = np.array([t * _MINUTE for t, _ in KNOTS])
_KNOT_X = np.array([x for _, x in KNOTS])


def betas(ranks: npt.NDArray[np.int64], meme: npt.NDArray[np.bool_]) -> FloatArray:
    """Each market's multiple of BTC's crash path, by open-interest rank."""
    beta = np.where(ranks == 0, 1.0, np.where(ranks == 1, 1.2, np.where(ranks < 20, 2.0, 2.5)))
    result: FloatArray = np.where(meme, 3.0, beta)
    return result


def level(since_start_ms: FloatArray) -> FloatArray:
    """BTC's log move from the episode's start (0 before it, -0.05 after it)."""
    result: FloatArray = np.interp(since_start_ms, _KNOT_T, _KNOT_X, left=0.0)
    return result


def active(since_start_ms: float) -> bool:
    """Whether the episode runs at this time."""
    return 0.0 <= since_start_ms < DURATION_MS


def falling(since_start_ms: float) -> bool:
    """Whether a wave is falling at this time (holders de-risk)."""
    if not active(since_start_ms):
        return False
    k = int(np.searchsorted(_KNOT_T, since_start_ms, side="right")) - 1
    return bool(_KNOT_X[k + 1] < _KNOT_X[k])


def refill_factor(since_start_ms: float) -> float:
    """How much longer than usual an empty slot waits to refill at this time."""
    return SLOW_REFILL if 0.0 <= since_start_ms < DURATION_MS + SLOW_REFILL_MS else 1.0
