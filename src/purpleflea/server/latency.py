"""Where an event's time goes on its way to a client: one histogram per stage.

Stages, each timed from the end of the one before:

- ``persisted``: venue frame received (the connection's clock, ``received_at``) -> the
  event's batch is in the store (sequencing, scoring, the coalescing wait and the write);
- ``published``: stored -> on the bus (every subscriber's queue has it);
- ``written``: on the bus -> handed to a client's socket (the stream's queue, filtering and
  the write call; bytes may still sit in the kernel's send buffer after that).

``/v1/metrics`` shows them as the Prometheus histogram ``purpleflea_stage_latency_seconds``
with a ``stage`` label, so an operator sees which stage a slow second spent its time in.
"""

from __future__ import annotations

from bisect import bisect_left

#: The stages in the order an event passes them.
STAGES = ("persisted", "published", "written")
#: Bucket upper bounds, seconds: from a quiet loopback write up to a backlog.
BUCKETS_S = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

MetricFamily = tuple[str, str, str, list[tuple[str, float]]]


class StageLatency:
    """Cumulative latency histograms, one per stage (cheap enough to feed per event)."""

    def __init__(self) -> None:
        # Per stage: counts per bucket (the last one is +Inf, not cumulative yet), sum, count.
        self._counts = {stage: [0] * (len(BUCKETS_S) + 1) for stage in STAGES}
        self._sums = dict.fromkeys(STAGES, 0.0)

    def observe(self, stage: str, seconds: float, times: int = 1) -> None:
        """``times`` events spent ``seconds`` in ``stage`` (a batch's events share a write)."""
        counts = self._counts.get(stage)
        if counts is None:
            raise ValueError(f"unknown latency stage {stage!r}: one of {', '.join(STAGES)}")
        seconds = max(seconds, 0.0)  # two clocks (venue receive is wall time) may disagree
        counts[bisect_left(BUCKETS_S, seconds)] += times
        self._sums[stage] += seconds * times

    def take(self, stage: str) -> tuple[list[int], float]:
        """``stage``'s counts per bucket and sum since the last take, reset to zero (what a
        stream worker process sends to main's histogram, see :meth:`add`)."""
        counts, total = self._counts[stage], self._sums[stage]
        self._counts[stage] = [0] * len(counts)
        self._sums[stage] = 0.0
        return counts, total

    def add(self, stage: str, counts: list[int], total: float) -> None:
        """Merge another histogram's :meth:`take` of ``stage`` into this one."""
        mine = self._counts[stage]
        if len(counts) != len(mine):
            raise ValueError(f"{len(counts)} bucket counts for stage {stage!r}, not {len(mine)}")
        for n, count in enumerate(counts):
            mine[n] += count
        self._sums[stage] += total

    def count(self, stage: str) -> int:
        return sum(self._counts[stage])

    def quantile(self, stage: str, q: float) -> float:
        """The upper bound of the bucket holding quantile ``q`` (inf beyond the last bucket;
        0 with nothing observed): a coarse figure, as precise as the buckets."""
        counts = self._counts[stage]
        total = sum(counts)
        if total == 0:
            return 0.0
        running = 0
        for bound, n in zip((*BUCKETS_S, float("inf")), counts, strict=True):
            running += n
            if running >= q * total:
                return bound
        return float("inf")

    def metrics(self) -> list[MetricFamily]:
        """The ``/v1/metrics`` family (samples' label parts carry the histogram suffixes)."""
        samples: list[tuple[str, float]] = []
        for stage in STAGES:
            running = 0
            bounds = [f"{b:g}" for b in BUCKETS_S] + ["+Inf"]
            for bound, n in zip(bounds, self._counts[stage], strict=True):
                running += n
                samples.append((f'_bucket{{stage="{stage}",le="{bound}"}}', float(running)))
            samples.append((f'_sum{{stage="{stage}"}}', self._sums[stage]))
            samples.append((f'_count{{stage="{stage}"}}', float(running)))
        return [
            (
                "stage_latency_seconds",
                "histogram",
                "Seconds an event spends in each stage: venue receive -> persisted -> "
                "published -> written to a client's socket.",
                samples,
            )
        ]
