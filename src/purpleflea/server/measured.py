"""The measured heatmaps the server serves: position samplers of every venue that publishes
per-account positions, run as background tasks, read by ``GET /v1/heatmap/{m}?source=measured``.

Off unless configured (:class:`PositionSettings`, ``purpleflea serve --sample-positions``): the
samplers spend part of this machine's IP allowance at the venues and keep discovered accounts
in the history's database (:mod:`purpleflea.store.accounts`). On the simulated market
(``simulated``, what ``purpleflea serve`` does by default) each sampled venue's share of the
simulator is served on loopback in the venue's own protocol
(:class:`~purpleflea.venues.venue.SimulatedVenue`) and the samplers sample it instead.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from purpleflea.engine.heatmap import HeatmapModel
from purpleflea.engine.measured_map import agreement
from purpleflea.ingest.feed_spec import Sink
from purpleflea.ingest.node_dedup import NodeDedup
from purpleflea.ingest.node_follower import NodeFollower
from purpleflea.ingest.position_sampler import PositionSampler
from purpleflea.ingest.sampling_schedule import SamplerConfig
from purpleflea.positions import MeasuredMap
from purpleflea.store.accounts import AccountStore, open_account_store
from purpleflea.venues import registry
from purpleflea.venues.venue import SimulatedVenue


@dataclass(frozen=True)
class PositionSettings:
    """How the server samples positions. ``info_url`` / ``ws_url`` replace the venue's own
    endpoints (a local fake or a proxy); ``None`` keeps them. ``simulated``: sample each
    venue's share of the simulated market instead (the URLs are its local server's)."""

    budget_per_minute: int = SamplerConfig().budget_per_minute
    coins: tuple[str, ...] = ("BTC", "ETH")
    info_url: str | None = None
    ws_url: str | None = None
    simulated: bool = False
    #: The fill output folder of a node of the sampled venue (its every liquidation): then
    #: published as they come, and the sampler's liquidations only where the node has none
    #: (:mod:`purpleflea.ingest.node_dedup`).
    node_fills: Path | None = None


class MeasuredMaps:
    """The measured map of each sampled market, from the first sampler that knows it."""

    def __init__(self, samplers: tuple[PositionSampler, ...]) -> None:
        self.samplers = samplers

    def markets(self) -> tuple[str, ...]:
        return tuple(sorted({m for sampler in self.samplers for m in sampler.markets()}))

    def heatmap(
        self, market: str, *, low: float | None, high: float | None, bucket: float | None
    ) -> MeasuredMap:
        """Raises ``LookupError`` for a market no sampler has marks for yet, ``ValueError``
        for bad bounds."""
        for sampler in self.samplers:
            if market in sampler.contexts:
                return sampler.measured(market, low=low, high=high, bucket=bucket)
        raise LookupError(f"no measured heatmap for {market!r} yet: no sampled venue lists it")

    def metrics(self, estimates: HeatmapModel) -> list[tuple[str, str, str, list[Sample]]]:
        """``/v1/metrics`` families: each sampled market's coverage and how well the estimated
        heatmap ranks the measured one's buckets (Spearman, mean of both sides)."""
        coverage: list[Sample] = []
        agree: list[Sample] = []
        known = set(estimates.markets())
        for market in self.markets():
            measured = self.heatmap(market, low=None, high=None, bucket=None)
            label = f'{{market="{market}"}}'
            coverage.append((label, measured.coverage))
            if market not in known:
                continue
            top = measured.prices[-1] + measured.bucket_size
            estimated = estimates.heatmap(
                market, low=measured.prices[0], high=top, bucket=measured.bucket_size
            )
            score = agreement(estimated, measured)
            if score is not None:
                agree.append((label, score))
        return [
            (
                "position_sampler_accounts",
                "gauge",
                "Accounts each position sampler schedules (discovered, at most max_accounts).",
                [
                    (f'{{exchange="{sampler.sampling.exchange}"}}', float(len(sampler.schedule)))
                    for sampler in self.samplers
                ],
            ),
            (
                "measured_heatmap_coverage",
                "gauge",
                "Sampled notional / both sides of open interest, per market.",
                coverage,
            ),
            (
                "heatmap_estimate_vs_measured_spearman",
                "gauge",
                "Rank correlation of the estimated heatmap with the measured one, per market.",
                agree,
            ),
        ]


Work = tuple[str, Callable[[], Awaitable[None]]]
Sample = tuple[str, float]


@dataclass
class Sampling:
    """What :func:`start_sampling` built: the maps, the background work, the simulated venues
    (start them before the work runs; ``observe`` them after every simulator step) and a
    closer (run it after the work stopped)."""

    maps: MeasuredMaps
    work: list[Work]
    close: Callable[[], Awaitable[None]]
    simulated: list[SimulatedVenue] = field(default_factory=list)


def start_sampling(
    settings: PositionSettings, store_url: str, sink: Sink | None = None
) -> Sampling:
    """The samplers for ``settings``. ``sink`` receives the liquidations of sampled accounts
    (the tracker's ``submit``)."""
    stores: list[AccountStore] = []
    samplers = []
    simulated: list[SimulatedVenue] = []
    extra: list[Work] = []
    for sampling in registry.position_sources():
        info_url, ws_url = settings.info_url, settings.ws_url
        if settings.simulated:
            if sampling.simulated is None:
                continue
            venue = sampling.simulated(settings.coins)
            simulated.append(venue)
            info_url, ws_url = venue.info_url, venue.ws_url
        venue_sink = sink
        if sink is not None and settings.node_fills is not None and sampling.parse_node_line:
            dedup = NodeDedup(sink)
            follower = NodeFollower(settings.node_fills, sampling.parse_node_line, dedup.node)
            venue_sink = dedup.sampled
            extra.append((f"{sampling.exchange} node fills", follower.run))
            extra.append((f"{sampling.exchange} node dedup", _releasing(dedup)))
        accounts = open_account_store(store_url)
        stores.append(accounts)
        samplers.append(
            PositionSampler(
                sampling,
                SamplerConfig(budget_per_minute=settings.budget_per_minute),
                coins=settings.coins,
                info_url=info_url,
                ws_url=ws_url,
                accounts=accounts,
                sink=venue_sink,
            )
        )

    async def close() -> None:
        for venue in simulated:
            await venue.close()
        for store in stores:
            await store.close()

    work: list[Work] = [(f"{s.sampling.exchange} position sampler", s.run) for s in samplers]
    return Sampling(MeasuredMaps(tuple(samplers)), work + extra, close, simulated)


def _releasing(dedup: NodeDedup, every: float = 1.0) -> Callable[[], Awaitable[None]]:
    async def run() -> None:
        while True:
            dedup.release()
            await asyncio.sleep(every)

    return run
