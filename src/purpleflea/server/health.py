"""Whether the server is healthy and whether it is ready: pure decisions over its vitals.

``/v1/health`` says ``ok`` only while data flows: the feed is connected and talking, the store
takes writes, the bus is up; otherwise ``degraded``, with one reason per problem.
``/v1/ready`` is narrower: it answers whether this process can serve at all (started, not
shutting down, the store writable, the bus up). A quiet feed degrades health but leaves the
node ready: its history and streams still work, and a load balancer draining every node of a
tracker whose exchanges are down would help no one.
"""

from __future__ import annotations

from typing import Any

import msgspec

#: How long a feed may be silent before health calls it silent (s), by default.
FEED_SILENCE_S = 60.0


class Vitals(msgspec.Struct, frozen=True, kw_only=True):
    """What the server knows of itself at one moment (see :func:`health_reasons`)."""

    #: ``sim``, ``replay``, ``live`` or ``none`` (no feed is required: tests, API nodes).
    source: str
    started: bool
    stopping: bool
    #: Whether the source task is still running (None: there is no source task).
    source_running: bool | None
    #: Seconds since the last event arrived from the source, or since the start if none has.
    quiet_s: float
    #: Live ingest: one stats dict per exchange connection (``state``, ``last_message_age_s``).
    connections: list[dict[str, Any]]
    #: One line per failing store writer (:meth:`WriteHealth.reasons`).
    store_failures: list[str]
    bus_up: bool
    silence_s: float = FEED_SILENCE_S
    #: One line while the key store cannot be read (the revocation poll fails): new keys
    #: cannot be checked and revocations are not applied; health only, a node still serves.
    key_store_failures: list[str] = msgspec.field(default_factory=list)
    #: Seqs stored and not on the bus yet: what a bus outage left, published from the store
    #: once the bus takes messages again (0: none). Health only: the node serves meanwhile.
    unpublished_seqs: int = 0


def readiness_reasons(vitals: Vitals) -> list[str]:
    """Why this process cannot serve now; empty when it is ready."""
    reasons: list[str] = []
    if vitals.stopping:
        reasons.append("shutting down")
    elif not vitals.started:
        reasons.append("starting: the tracker is not running yet")
    reasons += vitals.store_failures
    if not vitals.bus_up:
        reasons.append("bus: not connected")
    return reasons


def health_reasons(vitals: Vitals) -> list[str]:
    """Why data does not flow; empty when health is ``ok``."""
    backlog = []
    if vitals.unpublished_seqs > 0:
        backlog.append(
            f"bus: {vitals.unpublished_seqs} stored seqs not published yet "
            "(published from the store, in seq order, once the bus takes them)"
        )
    return [
        *readiness_reasons(vitals),
        *backlog,
        *vitals.key_store_failures,
        *_feed_reasons(vitals),
    ]


def _feed_reasons(vitals: Vitals) -> list[str]:
    source = vitals.source
    if source == "none":
        return []
    if source == "live":
        return _live_reasons(vitals.connections, vitals.silence_s)
    if vitals.source_running is False:
        return [f"source {source}: not running (finished or failed; see the log)"]
    if vitals.quiet_s > vitals.silence_s:
        return [f"source {source}: no event for {vitals.quiet_s:.0f} s"]
    return []


def _live_reasons(connections: list[dict[str, Any]], silence_s: float) -> list[str]:
    up = [c for c in connections if c.get("state") == "connected"]
    if not up:
        return [f"source live: no exchange connection is up ({len(connections)} configured)"]
    ages = [c["last_message_age_s"] for c in up if c.get("last_message_age_s") is not None]
    if not ages:
        return [f"source live: {len(up)} connections up but no frame received yet"]
    if min(ages) > silence_s:
        return [f"source live: no frame for {min(ages):.0f} s on any connection"]
    return []
