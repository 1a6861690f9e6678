"""HTX: exchange id, display name and coverage class."""

from __future__ import annotations

from typing import Final

from purpleflea.venues.venue import Coverage

EXCHANGE: Final = "htx"
DISPLAY_NAME: Final = "HTX"
#: shared/EXCHANGES.md line 27 (HTX linear swap): "not documented as throttled"; trap 4
#: (lines 47-49): HTX "(apparently)" gives every event.
COVERAGE: Coverage = "complete"
