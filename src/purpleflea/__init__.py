"""Purple Flea: real-time liquidation data for crypto perpetual futures."""

from purpleflea.model import Instrument, Liquidation, VenueLiquidation

__all__ = ["Instrument", "Liquidation", "VenueLiquidation"]
__version__ = "0.1.0"
