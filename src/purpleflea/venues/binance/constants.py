"""Binance USD-M and COIN-M futures: exchange ids, display names and coverage class."""

from __future__ import annotations

from typing import Final

from purpleflea.venues.venue import Coverage

USDM: Final = "binance_usdm"
COINM: Final = "binance_coinm"
DISPLAY_NAME: Final = "Binance"
USDM_DISPLAY_NAME: Final = "Binance USD-M"
COINM_DISPLAY_NAME: Final = "Binance COIN-M"
#: shared/EXCHANGES.md lines 15-16: "Snapshot: max 1 (the latest) liquidation per symbol per
#: 1000 ms. Undercounts." (COIN-M: "same 1000 ms snapshot").
COVERAGE: Coverage = "snapshot"
#: Quotes we count as USD (USDT/USDC at par, as everywhere in the tracker).
USD_QUOTES = ("USDT", "USDC", "FDUSD", "BUSD", "TUSD")
