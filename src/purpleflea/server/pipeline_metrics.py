"""The tracker's counters as ``/v1/metrics`` families named for what they count.

``purpleflea_events_total{outcome=...}`` exports every counter of the tracker's pipeline under
one name, so beside liquidations (``received``, ``published``, ...) it carries open-interest
snapshots, cascade alerts, failed store writes and bus publishes (attempts, not events), cascade
engine errors and, where they run, the open-interest recorder's rows and an API node's
followed bus messages: summing it, or reading it as events, is wrong. Dashboards and alerts
read it, so it stays as it is; these families say the same figures under their own names.
"""

from __future__ import annotations

from collections.abc import Mapping

from purpleflea.server.latency import MetricFamily

#: One family: its name (after ``purpleflea_``), help, the label it splits by (None: no
#: label), the pipeline counter behind each label value, and whether it is exported before
#: its first increment (the pipeline's own families: there from the start, so ``increase()``
#: sees the first failure; the rest only where their component runs).
_Family = tuple[str, str, str | None, dict[str, str], bool]

FAMILIES: tuple[_Family, ...] = (
    (
        "liquidations_total",
        "Venue liquidation events by what became of them: received (every one handed to the "
        "tracker; the others are parts of it), published (stored and on the bus), duplicate, "
        "unsized (contract size unknown), stored_unpublished (stored, but the bus refused "
        "their batch: published from the store once it takes them again, republished_total), "
        "dropped_buffer_full, dropped_at_shutdown (not stored when the process stopped), "
        "batch_error (in a batch an error stopped), rejected_names (a market, symbol, "
        "exchange or id no user should be sent: not a printable market name, not "
        "printable, too long, or starting like a spreadsheet formula).",
        "outcome",
        {
            "received": "received",
            "published": "published",
            "duplicate": "duplicates",
            "unsized": "unsized",
            "stored_unpublished": "stored_unpublished",
            "dropped_buffer_full": "dropped_buffer_full",
            "dropped_at_shutdown": "dropped_at_shutdown",
            "batch_error": "flush_errors",
            "rejected_names": "rejected_names",
        },
        True,
    ),
    (
        "cascade_alerts_total",
        "Cascade alerts published (started, updated, exhausted).",
        None,
        {"": "cascade_alerts"},
        True,
    ),
    (
        "snapshots_total",
        "Open-interest and mark-price snapshots from the pollers or the simulator: received, "
        "and rejected by the heatmap model or for their names, as liquidations' rejected_names "
        "(counted in received too).",
        "outcome",
        {"received": "snapshots", "rejected": "bad_snapshots"},
        True,
    ),
    (
        "store_write_failures_total",
        "Failed attempts to write a batch to the store (each is retried with backoff).",
        None,
        {"": "store_write_errors"},
        True,
    ),
    (
        "publish_failures_total",
        "Stored batches the bus did not take (published from the store once it takes them "
        "again: republished_total).",
        None,
        {"": "publish_errors"},
        True,
    ),
    (
        "republished_total",
        "Items stored while the bus refused their batches (a NATS outage) and published later "
        "from the store, in seq order, once it took them again (stream clients and webhooks "
        "then get them live): liquidation events (part of stored_unpublished) and cascade "
        "alerts.",
        "kind",
        {"liquidation": "republished", "cascade": "republished_alerts"},
        True,
    ),
    (
        "republish_failures_total",
        "Failed tries to publish a bus outage's backlog from the store while no event came "
        "(the bus or the store refused; tried again a second later).",
        None,
        {"": "republish_errors"},
        True,
    ),
    (
        "cascade_engine_errors_total",
        "Cascade engine failures: score (the event kept, with score 0), tick (that tick's "
        "alerts lost).",
        "stage",
        {"score": "scorer_errors", "tick": "tick_errors"},
        True,
    ),
    (
        "open_interest_rows_total",
        "Open-interest rows of the recorder: written to the store, dropped (held beyond its "
        "batch while writes failed).",
        "outcome",
        {"written": "oi_rows_written", "dropped": "oi_rows_dropped"},
        False,
    ),
    (
        "open_interest_write_failures_total",
        "Failed attempts of the open-interest recorder to write to the store.",
        None,
        {"": "oi_write_errors"},
        False,
    ),
    (
        "engine_journal_write_failures_total",
        "Failed writes of the cascade engine's journal (each stops it until the next "
        "checkpoint: a crash before that continues the engine without what it was told since).",
        None,
        {"": "journal_write_errors"},
        False,
    ),
    (
        "bus_messages_followed_total",
        "Bus messages (events and alerts) an API node's follower read.",
        None,
        {"": "followed"},
        False,
    ),
    (
        "follower_resubscribes_total",
        "Times an API node's follower fell behind the bus and subscribed again.",
        None,
        {"": "follower_resubscribed"},
        False,
    ),
)


def pipeline_families(counters: Mapping[str, int]) -> list[MetricFamily]:
    """The families of :data:`FAMILIES` for the tracker's ``counters``: the pipeline's
    always, the others once their component (which may not run here) counted anything."""
    families: list[MetricFamily] = []
    for name, help_, label, values, always in FAMILIES:
        if not always and not any(counter in counters for counter in values.values()):
            continue
        samples = [
            (f'{{{label}="{value}"}}' if label else "", float(counters.get(counter, 0)))
            for value, counter in values.items()
        ]
        families.append((name, "counter", help_, samples))
    return families
