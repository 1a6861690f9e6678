"""Hyperliquid: exchange id, display name and coverage class."""

from __future__ import annotations

from typing import Final

from purpleflea.model import Coverage

EXCHANGE: Final = "hyperliquid"
DISPLAY_NAME: Final = "Hyperliquid"
#: shared/EXCHANGES.md line 22 (Hyperliquid): "not a feed; sampling only" (no public
#: liquidation feed, trap 13: only the fills of the addresses we watch).
COVERAGE: Coverage = "sampled"
