"""Bitget: exchange id, display name and coverage class."""

from __future__ import annotations

from typing import Final

from purpleflea.venues.venue import Coverage

EXCHANGE: Final = "bitget"
DISPLAY_NAME: Final = "Bitget"
#: shared/EXCHANGES.md line 25 (Bitget UTA v3): "aggregated"; trap 4 (lines 47-48) lists Bitget
#: among the snapshots.
COVERAGE: Coverage = "snapshot"
