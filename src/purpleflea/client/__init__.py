"""The Purple Flea SDK: stream liquidations and cascades, query history, aggregates, markets.

Quick start (the server address and key come from ``PURPLEFLEA_URL`` and
``PURPLEFLEA_API_KEY`` when not passed)::

    import asyncio

    import purpleflea

    liq = purpleflea.LiquidationClient(api_key="pf_...")


    async def main() -> None:
        async with liq.stream(min_usd=100_000) as stream:
            async for event in stream:
                print(event["side"], event["size_usd"], event["market"], event["cascade_score"])


    asyncio.run(main())

The stream reconnects by itself (exponential backoff with jitter) and resumes from the last
``seq`` it saw, so a dropped connection or a server restart costs no event and repeats none.
Given several servers (API nodes of one deployment: a list, or commas in ``base_url`` or
``PURPLEFLEA_URL``), it moves to the next one when its server is unreachable and resumes there
(their seqs are one sequence); REST calls fail over the same way.
Errors that retrying cannot fix (a bad key, a revoked key, a bad filter) raise
:class:`PurpleFleaError` subclasses instead; so does a REST call no server answers
(:class:`ServerUnreachableError`, naming the servers tried).

Modules: ``errors`` (the exceptions), ``types`` (the REST answers without a struct in
:mod:`purpleflea.model`), ``stream`` (the reconnecting stream), ``aio``
(:class:`LiquidationClient`) and ``sync`` (:class:`SyncLiquidationClient`). The SDK imports
nothing of the server (``tests/client/test_exports.py`` checks).
"""

from purpleflea.client.aio import LiquidationClient
from purpleflea.client.errors import (
    AuthenticationError,
    BadRequestError,
    PurpleFleaError,
    RateLimitError,
    ServerUnreachableError,
)
from purpleflea.client.stream import Stream
from purpleflea.client.sync import SyncLiquidationClient, SyncStream
from purpleflea.client.types import (
    Bucket,
    Coverage,
    CoverageGap,
    CoverageHour,
    CoverageImport,
    HistoryPage,
)

__all__ = [
    "AuthenticationError",
    "BadRequestError",
    "Bucket",
    "Coverage",
    "CoverageGap",
    "CoverageHour",
    "CoverageImport",
    "HistoryPage",
    "LiquidationClient",
    "PurpleFleaError",
    "RateLimitError",
    "ServerUnreachableError",
    "Stream",
    "SyncLiquidationClient",
    "SyncStream",
]
