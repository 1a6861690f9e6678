"""Purple Flea: real-time liquidation data for crypto perpetual futures.

The SDK's public surface: :class:`LiquidationClient` (async), :class:`SyncLiquidationClient`,
the event types, the REST answers' types, the errors, and :func:`verify_webhook` for webhook
receivers. Everything else in the package is the server's.

The names are imported when one is first used (``purpleflea.LiquidationClient``, ``from
purpleflea import Liquidation``), not with the package: the ``purpleflea`` command imports
this package before it can catch a Ctrl-C, and the SDK's modules took 0.2-0.5 s of that.
"""

import importlib
import typing

if typing.TYPE_CHECKING:
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

#: The modules the public names come from (each name from the first that has it).
_HOMES = ("purpleflea.client", "purpleflea.model", "purpleflea.positions", "purpleflea.webhook")


# Hidden from type checkers: a misspelt name stays an error there, not an ``object``.
if not typing.TYPE_CHECKING:

    def __getattr__(name: str) -> object:
        """The public names, all imported at the first use of one (then they are the module's
        own attributes, as an import at the top would have made them)."""
        if name not in __all__:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        homes = [importlib.import_module(home) for home in _HOMES]
        found = {n: next(getattr(m, n) for m in homes if hasattr(m, n)) for n in __all__}
        globals().update(found)
        return found[name]

    def __dir__() -> list[str]:
        return sorted({*globals(), *__all__})
