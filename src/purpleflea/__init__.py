"""Purple Flea: real-time liquidation data for crypto perpetual futures.

The SDK's public surface: :class:`LiquidationClient` (async), :class:`SyncLiquidationClient`,
the event types, the REST answers' types, the errors, and :func:`verify_webhook` for webhook
receivers. Everything else in the package is the server's.
"""

from purpleflea.client import (
    AuthenticationError,
    BadRequestError,
    Bucket,
    Coverage,
    CoverageGap,
    CoverageHour,
    CoverageImport,
    HistoryPage,
    LiquidationClient,
    PurpleFleaError,
    RateLimitError,
    ServerUnreachableError,
    Stream,
    SyncLiquidationClient,
    SyncStream,
)
from purpleflea.model import (
    CascadeAlert,
    Cluster,
    Heatmap,
    Instrument,
    Liquidation,
    VenueLiquidation,
)
from purpleflea.positions import MeasuredMap
from purpleflea.webhook import WebhookVerificationError, verify_webhook

__all__ = [
    "AuthenticationError",
    "BadRequestError",
    "Bucket",
    "CascadeAlert",
    "Cluster",
    "Coverage",
    "CoverageGap",
    "CoverageHour",
    "CoverageImport",
    "Heatmap",
    "HistoryPage",
    "Instrument",
    "Liquidation",
    "LiquidationClient",
    "MeasuredMap",
    "PurpleFleaError",
    "RateLimitError",
    "ServerUnreachableError",
    "Stream",
    "SyncLiquidationClient",
    "SyncStream",
    "VenueLiquidation",
    "WebhookVerificationError",
    "verify_webhook",
]
__version__ = "0.1.0"
