"""OKX: exchange id, display name and coverage class."""

from __future__ import annotations

from typing import Final

from purpleflea.venues.venue import Coverage

EXCHANGE: Final = "okx"
DISPLAY_NAME: Final = "OKX"
#: shared/EXCHANGES.md line 19 (OKX v5): "doesn't represent the total"; older docs: max 1
#: order per contract per second; trap 4 lists OKX among the snapshots.
COVERAGE: Coverage = "snapshot"
