"""What a restarted tracker must tell clients so that every cascade's lifecycle stays whole.

A restart warms the cascade engine from the store (the newest events and the open interest
the store kept) and drops the alerts it raises meanwhile, as published before. The warmed
engine need not agree with the one that ran before: live, it read every open-interest
snapshot and ticked on the wall clock; a cascade may have started before the events the warm
reads. Without this, clients heard ``updated`` and ``exhausted`` of a cascade never
``started`` (a simulated crash, 2026-12-07: DOGE-PERP's first alert after a restart was an
``updated``), and a cascade the store held as active that the warmed engine did not follow
stayed active in ``GET /v1/cascades`` and the MCP tools for ever.

Pure: the pipeline reads both sides, calls :func:`handover_alerts`, then stores and publishes
what it returns like any alert.
"""

from __future__ import annotations

from collections.abc import Iterable

import msgspec

from purpleflea.engine.cascade import alert_message
from purpleflea.model import CascadeAlert


def handover_alerts(
    following: Iterable[CascadeAlert], stored: Iterable[CascadeAlert]
) -> list[CascadeAlert]:
    """The alerts that reconcile the warmed engine with what clients were told.

    ``following``: the engine's active cascades after warming (their current state);
    ``stored``: the latest stored alert of each cascade of those markets and of every stored
    active one. A cascade the engine follows that no stored alert names is announced as
    ``started`` (its state now); a stored active cascade it does not follow is closed as
    ``exhausted`` at its last stored state. Seqs are left to the caller.
    """
    latest = {alert.id: alert for alert in stored}
    follows = {alert.id: alert for alert in following}
    alerts = [
        msgspec.structs.replace(alert, status="started", seq=0)
        for cascade, alert in follows.items()
        if cascade not in latest
    ]
    for cascade, alert in latest.items():
        if alert.status != "exhausted" and cascade not in follows:
            alerts.append(_exhausted(alert))
    return sorted(alerts, key=lambda alert: (alert.updated_at, alert.id))


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
