"""Where events come from: the simulator, a replay file, or the live exchanges.

Each source is a coroutine that runs until cancelled and hands venue events to the tracker
(``tracker.submit``) and open-interest snapshots to ``tracker.on_snapshot``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import msgspec

from purpleflea.clock import now_ms
from purpleflea.ingest.uptime import Ledger
from purpleflea.model import VenueLiquidation
from purpleflea.outage import OutageRecord, describe
from purpleflea.server.pipeline import Pipeline
from purpleflea.venues import registry

if TYPE_CHECKING:
    import numpy.typing as npt

    from purpleflea.sim import SimStep, Simulator
    from purpleflea.sim.process import WarmUpProgress
    from purpleflea.sim.resume import SimState

log = logging.getLogger("purpleflea.source")


#: Sees the simulator after each step it yields (between steps: no block is being computed).
SimObserver = Callable[["Simulator", "SimStep"], None]


class SimStatus:
    """What the simulator is doing, for ``/v1/health`` (``source_status``): a demo's user
    waits some seconds for the first liquidation, and the dashboard says why from this.

    Set by :func:`run_sim`: ``starting`` (reading its saved state), ``warming_up`` (a new
    market's unseen two hours, with the blocks done of all), then ``running`` from the market's
    start. The warm-up's progress is written from its thread: one tuple, replaced whole.
    """

    def __init__(self, markets: int) -> None:
        self.markets = markets
        self.phase = "starting"
        self.warm_up = (0, 0)  # blocks computed, blocks in all
        self.started_ms: int | None = None  # the market's start (ms), once it runs
        self.resumed = False

    def warming(self, done: int, total: int) -> None:
        """The warm-up's progress (:data:`purpleflea.sim.process.WarmUpProgress`)."""
        self.warm_up = (done, total)
        self.phase = "warming_up"

    def running(self, started_ms: int, *, resumed: bool) -> None:
        self.phase, self.started_ms, self.resumed = "running", started_ms, resumed

    def report(self, now: int, events: bool) -> dict[str, object]:
        """The status at ``now`` (ms) with its ``message`` for a user waiting for a first
        liquidation; ``events``: the tracker has stored some (the message is then empty)."""
        done, total = self.warm_up
        body: dict[str, object] = {"phase": self.phase, "markets": self.markets}
        if self.phase == "warming_up":
            body["warm_up"] = {"blocks_done": done, "blocks": total}
            percent = 100 * done // max(total, 1)
            message = (
                f"the simulator is warming up its {self.markets} markets (two unseen hours "
                f"that settle their positions), {percent} % done"
            )
        elif self.phase == "running" and self.started_ms is not None:
            body["started_ms"] = self.started_ms
            how = "resumed" if self.resumed else "started"
            running_s = max(0, now - self.started_ms) // 1000
            message = (
                f"the simulated market ({self.markets} markets) {how} {running_s} s ago; "
                "no liquidation yet"
            )
        else:
            message = "the simulator is starting"
        body["message"] = "" if events else message
        return body


#: The live simulator's state, kept beside the store so a restart continues the market.
SIM_STATE_FILE = "sim_state.npz"
#: The longest (wall clock) the live simulator's state goes unsaved; it is also written on
#: stop, after the first block, and when a market moved (:data:`SIM_SAVE_MOVE`).
SIM_SAVE_EVERY_S = 300.0
#: A market's mark this far (relative) from the state last saved makes the next block's state
#: saved: a process killed (SIGKILL, a crash, a lost machine) resumes within about this much
#: plus one block's move of the prices it served (the crash episode's 30 minutes, seed 0,
#: 275 markets: 195 saves, at most 0.94 % from the last saved). With saves only every 5
#: minutes, the first 30 s in, a SIGKILL 29.4 s in restarted a new market, its marks 0.5-6.4 %
#: off the served ones (tests/reliability/test_chaos_sim_restart.py), and a later kill resumed
#: prices up to 5 minutes old. The first save writes the whole state (~13 ms of CPU, 16 MB for
#: 275 markets), later ones what changed (resume.StateSaver: ~3 ms, ~0.1-0.3 MB; 93 MB in the
#: crash episode's hour where whole states each time wrote 5 GB, bench/sim_state_saves.py).
SIM_SAVE_MOVE = 0.005
#: But not more often than this (wall clock): at a high ``--speed`` a block takes a fraction
#: of a second, and its state need not be written each time.
SIM_SAVE_MIN_S = 1.0


async def run_sim(
    tracker: Pipeline,
    *,
    seed: int,
    markets: int,
    speed: float,
    state_path: Path | None = None,
    ledger: Ledger | None = None,
    observers: Sequence[SimObserver] = (),
    held_elsewhere: Sequence[Callable[[str], float]] = (),
    status: SimStatus | None = None,
) -> None:
    """The built-in market simulator, paced at ``speed`` x real time from now.

    With ``state_path``, the market continues across restarts: its state (prices, open
    interest, positions) is saved there after the first block, when a market moved
    (:data:`SIM_SAVE_MOVE`), every few minutes and when the source stops (what changed, in a
    log beside it), and a restart resumes it at the new start time with a random stream of a
    new epoch, so the store never holds the same episode twice (see
    :mod:`purpleflea.sim.resume`).

    With a ``ledger``, each simulated exchange counts as one connection that is always up
    (the simulator never drops one), on the simulator's clock, and its events count for the
    snapshot venues' pressure: the dashboard's coverage has data offline.

    ``observers`` see the simulator after each step (the simulated venues that serve their
    share of its positions, :mod:`purpleflea.server.measured`); ``held_elsewhere`` are their
    ``held_share``: the simulator's events of a market are published without those shares,
    which reach the stream through the samplers instead (one path per share, no double
    count). ``status`` is kept saying what the simulator does (:class:`SimStatus`).
    """
    import numpy as np  # noqa: PLC0415 - numpy when used

    from purpleflea.sim import paced, resume  # noqa: PLC0415
    from purpleflea.sim.throttle import snapshot_throttle  # noqa: PLC0415

    saved: resume.SimState | None = None
    if state_path is not None:
        try:
            saved = resume.load(state_path)
        except ValueError as exc:
            log.warning("simulator: starting afresh: %s", exc)
    # Stopped meanwhile (Ctrl-C during a warm-up of seconds to a minute), the thread is told
    # to drop the warm-up, and the process does not wait for it (_apart).
    abandon = threading.Event()
    status = status if status is not None else SimStatus(markets)
    try:
        sim = await _apart(
            partial(
                live_simulator,
                seed,
                markets,
                saved,
                tracker.last_seq,
                abandon=abandon,
                progress=status.warming,
            ),
            "simulator build",
        )
    except asyncio.CancelledError:
        abandon.set()
        raise
    status.running(sim.config.start_ms, resumed=continues(saved, seed, markets))
    log.info(
        "simulator: %d markets, seed %d, epoch %d (%s), %.3g x real time",
        markets,
        seed,
        sim.config.epoch,
        "resumed" if continues(saved, seed, markets) else "new market",
        speed,
    )
    if ledger is not None:
        for exchange in registry.SIM_LISTINGS:
            ledger.up(f"sim:{exchange}", exchange, sim.config.start_ms)
    # The market as it stands at the start (resumed or new), before its first block: the
    # heatmap has every market at once, not one snapshot interval (10 s) plus the build after
    # a restart. These are the simulator's own open interest and marks now, not stale rows.
    for snapshot in sim.snapshots(sim.config.start_ms):
        tracker.on_snapshot(snapshot)
    # One state, overwritten in place by each block's checkpoint. The lock: the final save
    # below may run while a cancelled block's thread is still in its checkpoint.
    latest: list[resume.SimState] = []
    keeping = threading.Lock()
    last_save = time.monotonic()
    failed_at: float | None = None  # when the last save failed; None: it was written
    saved_marks: list[npt.NDArray[np.float64]] = []  # the marks of the state last saved
    saves = OutageRecord()  # the state file's outage: one line when it starts, one when it ends
    # The first save writes the whole state, later ones what changed (resume.StateSaver).
    saver = None if state_path is None else resume.StateSaver(state_path)

    def save(state: resume.SimState) -> bool:
        """Keep the market's state (True when written); a failure (a full disk) is logged
        once per streak and never stops the market: a restart then resumes from the last
        state saved."""
        assert saver is not None
        try:
            saver.save(state)
        except OSError as exc:
            if saves.failed(describe(exc)):
                log.warning(
                    "simulator: cannot save its state to %s (%s); the market goes on, a "
                    "restart resumes from the last state saved",
                    state_path,
                    exc.strerror or exc,
                )
            return False
        if saves.recovered() is not None:
            log.info("simulator: state saved to %s again", state_path)
        return True

    def due(state: resume.SimState) -> bool:
        """Whether ``state`` is to be written now: the first one, one a market moved
        :data:`SIM_SAVE_MOVE` since the last save, or :data:`SIM_SAVE_EVERY_S` after it."""
        now = time.monotonic()
        # A failed save's retry waits SIM_SAVE_MIN_S from it (not every block of a high
        # --speed while a disk is full), before the periodic rule: that one is measured
        # from the last state written, which a disk full for long leaves ever further back.
        if failed_at is not None and now - failed_at < SIM_SAVE_MIN_S:
            return False
        if not saved_marks:
            return True
        waited = now - last_save
        if waited >= SIM_SAVE_EVERY_S:
            return True
        if waited < SIM_SAVE_MIN_S:
            return False
        return bool(np.max(np.abs(state.marks / saved_marks[0] - 1.0)) >= SIM_SAVE_MOVE)

    def checkpoint(at_block_end: Simulator) -> None:
        nonlocal last_save, failed_at
        with keeping:
            latest[:] = [resume.capture(at_block_end, into=latest[0] if latest else None)]
            if state_path is not None and due(latest[0]):
                now = time.monotonic()
                # Only a written state moves the marks and time the next save is measured
                # from: after a failed one (a full disk for a moment) the next block past
                # SIM_SAVE_MIN_S tries again, where it waited for another 0.5 % move or 5 min.
                if save(latest[0]):
                    saved_marks[:] = [latest[0].marks.copy()]
                    last_save, failed_at = now, None
                else:
                    failed_at = now

    watching = list(observers)
    # Paced from start_ms on the wall clock: each event's ts is its moment on the wall clock.
    try:
        async for step in paced(
            sim,
            speed=speed,
            wall_origin_ms=sim.config.start_ms,
            checkpoint=checkpoint,
            thin=snapshot_throttle(sim).thin,
        ):
            tracker.advance_clock(step.ts)
            received = now_ms()
            for whole in step.liquidations:
                event = without_held(whole, held_elsewhere)
                if event is None:
                    continue
                if ledger is not None:
                    ledger.event(event.exchange, event.symbol, event.ts or step.ts)
                tracker.submit(event, received)
            for snapshot in step.snapshots:
                tracker.on_snapshot(snapshot)
            for observe in tuple(watching):
                try:
                    observe(sim, step)
                except Exception:  # a simulated venue's bug must not stop the market
                    log.exception("simulator: an observer failed and is dropped: %r", observe)
                    watching.remove(observe)
    finally:
        # The state at the end of the block in progress: a restart skips its undelivered rest
        # (at most one block) rather than liquidate a position twice.
        if state_path is not None:
            with keeping:
                if latest:
                    save(latest[0])


T = TypeVar("T")


async def _apart(work: Callable[[], T], name: str) -> T:
    """``work()`` on a daemon thread of its own; cancelled, nobody waits for it any more.

    The simulator's build ran on asyncio's default executor, which ``asyncio.run`` joins as
    it ends: a server stopped while it built its market exited only once the build was done,
    its warm-up abandoned at the next block but its setup (~0.35 s of CPU for 275 markets,
    in calls no flag reaches) run out first: 3-5 s at load 10 after everything else had
    stopped. The build touches nothing but its own arrays, so the process may end under it.
    """
    loop = asyncio.get_running_loop()
    done: asyncio.Future[T] = loop.create_future()

    def run() -> None:
        try:
            result = work()
        except BaseException as exc:  # handed to the awaiting task, raised there
            _hand_over(loop, partial(_fail, done, exc))
        else:
            _hand_over(loop, partial(_succeed, done, result))

    threading.Thread(target=run, name=name, daemon=True).start()
    return await done


def _hand_over(loop: asyncio.AbstractEventLoop, callback: Callable[[], None]) -> None:
    with contextlib.suppress(RuntimeError):  # the loop closed: the process ends, none waits
        loop.call_soon_threadsafe(callback)


def _succeed(done: asyncio.Future[T], result: T) -> None:
    if not done.done():  # cancelled: the stop came first
        done.set_result(result)


def _fail(done: asyncio.Future[T], exc: BaseException) -> None:
    if not done.done():
        done.set_exception(exc)


def without_held(
    event: VenueLiquidation, held_elsewhere: Sequence[Callable[[str], float]]
) -> VenueLiquidation | None:
    """``event`` less the shares of its market held by simulated venues (None: all held)."""
    held = sum(share(event.market) for share in held_elsewhere)
    if held <= 0:
        return event
    keep = 1 - held
    if keep <= 1e-12:
        return None
    return msgspec.structs.replace(
        event,
        quantity=None if event.quantity is None else event.quantity * keep,
        size_usd=None if event.size_usd is None else event.size_usd * keep,
        contracts=None if event.contracts is None else event.contracts * keep,
    )


def continues(saved: SimState | None, seed: int, markets: int) -> bool:
    """Whether the served market continues ``saved`` (same seed and market count) rather
    than starting a new one."""
    return saved is not None and (saved.seed, saved.n_markets) == (seed, markets)


def live_simulator(
    seed: int,
    markets: int,
    saved: SimState | None,
    last_seq: int,
    *,
    abandon: threading.Event | None = None,
    progress: WarmUpProgress | None = None,
) -> Simulator:
    """The served simulator starting now: ``saved``'s market continued with a new epoch (and its
    crash episode, if it is still to come or going on), or a new market with its crash episode
    a minute in (epoch ``last_seq``: a store with history gets a stream it has not seen).

    A new market's warm-up takes a second or more; the simulator is then moved to start at
    the moment it is ready (same stream), so its first events are not late. ``abandon``, set
    from another thread, stops the warm-up (:class:`~purpleflea.sim.process.WarmUpAbandoned`);
    ``progress`` is told how far it is.
    """
    from purpleflea.sim import SimConfig, Simulator  # noqa: PLC0415 - numpy when used

    if saved is not None and continues(saved, seed, markets):
        start = now_ms()
        config = SimConfig.served(
            seed=seed,
            n_markets=markets,
            start_ms=start,
            epoch=saved.epoch + 1,
            crash_start_ms=saved.crash_after_pause(start),
        )
        return Simulator.from_state(config, saved)
    if saved is not None:
        log.warning(
            "simulator: the saved market is seed %d with %d markets; starting a new one",
            saved.seed,
            saved.n_markets,
        )
    config = SimConfig.served(seed=seed, n_markets=markets, start_ms=now_ms(), epoch=last_seq)
    state = Simulator(config, abandon=abandon, progress=progress).capture_state()
    start = now_ms()
    moved = replace(config, start_ms=start, crash_start_ms=state.crash_after_pause(start))
    return Simulator.from_state(moved, state)


async def run_replay(tracker: Pipeline, path: Path, *, speed: float) -> None:
    """Replay a JSON-lines file of events (one event object per line), paced by ``ts``.

    Lines need the venue fields (``id, exchange, symbol, market, side, price, quantity,
    size_usd, ts``); ``seq``/``received_at``/``cascade_score``/``coverage`` are ignored and
    reassigned. A bad line is logged with its number and skipped. Replayed ids dedupe against the
    store.
    """
    previous_ts: int | None = None
    bad = 0
    with path.open("rb") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                raw = msgspec.json.decode(line)
                if isinstance(raw, dict):
                    for extra in ("seq", "received_at", "cascade_score", "coverage"):
                        raw.pop(extra, None)
                event = msgspec.convert(raw, VenueLiquidation)
            except (msgspec.DecodeError, msgspec.ValidationError) as exc:
                bad += 1
                log.warning("%s:%d: skipped: %s", path, number, exc)
                continue
            ts = event.ts if event.ts is not None else previous_ts
            if ts is not None and previous_ts is not None and ts > previous_ts and speed > 0:
                await asyncio.sleep((ts - previous_ts) / 1000.0 / speed)
            if ts is not None:
                previous_ts = ts
                tracker.advance_clock(ts)
            tracker.submit(event)
    log.info("replay of %s finished (%d bad lines skipped)", path, bad)
