"""Deribit: exchange id, display name and coverage class."""

from __future__ import annotations

from typing import Final

from purpleflea.venues.venue import Coverage

EXCHANGE: Final = "deribit"
DISPLAY_NAME: Final = "Deribit"
#: shared/EXCHANGES.md line 21 (Deribit): "complete (every liquidation trade)".
COVERAGE: Coverage = "complete"
