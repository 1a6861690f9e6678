"""What a restarted tracker must tell clients so that every cascade's lifecycle stays whole.

A restart warms the cascade engine from the store (the newest events and the open interest
the store kept) and drops the alerts it raises meanwhile, as published before. The warmed
engine need not agree with the one that ran before: live, it read every open-interest
snapshot and ticked on the wall clock; a cascade may have started before the events the warm
reads. Without this, clients heard ``updated`` and ``exhausted`` of a cascade never
``started`` (a simulated crash, 2026-12-07: DOGE-PERP's first alert after a restart was an
``updated``), and a cascade the store held as active that the warmed engine did not follow
stayed active in ``GET /v1/cascades`` and the MCP tools for ever. The two engines disagree
often: a restart 23 minutes into the simulated crash found 28 cascades active in the warmed
engine that the live one had never started (most of them quiet, exhausted at the first tick).
Since the checkpoints (:mod:`.engine_state`) a restart after a crash continues the engine that
ran and replays what was stored after its last checkpoint, and what else it was told since from
the journal (:mod:`.engine_journal`): the two then agree (0 cascades of 50 and of 275 markets,
measured), but for an event scored and not stored at the kill or a journal that could not be
written; the warm is the fallback.

Pure: the pipeline reads both sides and calls :func:`handover`; the sequencer publishes its
alerts like any alert and drops every alert of a muted cascade.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple

import msgspec

from purpleflea.engine.cascade import alert_message
from purpleflea.model import CascadeAlert


class Handover(NamedTuple):
    """What a restart publishes and which cascades of the warmed engine it keeps quiet."""

    alerts: list[CascadeAlert]
    muted: set[str]


def handover(following: Iterable[CascadeAlert], stored: Iterable[CascadeAlert]) -> Handover:
    """Reconcile the warmed engine with what clients were told.

    ``following``: the engine's active cascades after warming (their current state);
    ``stored``: the latest stored alert of each cascade of those markets and of every stored
    active one. A stored active cascade the engine does not follow is closed with an
    ``exhausted`` alert at its last stored state (seq left to the caller). A cascade the
    engine follows that no stored alert names is muted: the engine before the restart saw
    the same events with every open-interest snapshot and did not start it, so its alerts
    (an ``updated``, an ``exhausted``) would tell clients of a cascade that never started.
    So is one stored as exhausted (the engine before ended it on a wall-clock tick, which the
    warm does not replay): its next alert was a second ``exhausted``.
    """
    latest = {alert.id: alert for alert in stored}
    follows = {alert.id for alert in following}
    closed = [
        _exhausted(alert)
        for cascade, alert in latest.items()
        if alert.status != "exhausted" and cascade not in follows
    ]
    closed.sort(key=lambda alert: (alert.updated_at, alert.id))
    told_over = {cascade for cascade, alert in latest.items() if alert.status == "exhausted"}
    return Handover(
        closed, {cascade for cascade in follows if cascade not in latest.keys() - told_over}
    )


def _exhausted(last: CascadeAlert) -> CascadeAlert:
    message = alert_message(
        "exhausted",
        last.market,
        last.side,
        score=last.score,
        window_usd=last.window_usd,
        window_s=last.window_s,
        total_usd=last.total_usd,
        events=last.events,
        duration_s=last.duration_s,
        price_move_pct=last.price_move_pct,
        peak_score=last.peak_score,
        start_score=last.peak_score,  # not read for an exhausted line
    )
    return msgspec.structs.replace(last, status="exhausted", message=message, seq=0)
