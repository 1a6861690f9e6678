"""Gate: exchange id, display name and coverage class."""

from __future__ import annotations

from typing import Final

from purpleflea.venues.venue import Coverage

EXCHANGE: Final = "gate"
DISPLAY_NAME: Final = "Gate"
#: shared/EXCHANGES.md line 26 (Gate.io futures): "max 1 liquidation per contract per second";
#: trap 4 (lines 47-48) lists Gate among the snapshots.
COVERAGE: Coverage = "snapshot"
