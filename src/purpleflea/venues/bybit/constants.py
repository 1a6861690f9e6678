"""Bybit: exchange id, display name and coverage class."""

from __future__ import annotations

from typing import Final

from purpleflea.venues.venue import Coverage

EXCHANGE: Final = "bybit"
DISPLAY_NAME: Final = "Bybit"
#: shared/EXCHANGES.md line 17 (Bybit v5 ``allLiquidation``): "500 ms push, documented as
#: "all liquidations""; trap 4 (lines 47-49) counts it among the feeds that give every event.
COVERAGE: Coverage = "complete"
