"""dYdX v4: exchange id, display name and coverage class."""

from __future__ import annotations

from typing import Final

from purpleflea.venues.venue import Coverage

EXCHANGE: Final = "dydx_v4"
DISPLAY_NAME: Final = "dYdX v4"
#: shared/EXCHANGES.md line 23 (dYdX v4): "complete for ``LIQUIDATED``".
COVERAGE: Coverage = "complete"
