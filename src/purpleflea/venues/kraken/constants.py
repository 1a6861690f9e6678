"""Kraken Futures: exchange id, display name and coverage class."""

from __future__ import annotations

from typing import Final

from purpleflea.venues.venue import Coverage

EXCHANGE: Final = "kraken_futures"
DISPLAY_NAME: Final = "Kraken Futures"
#: shared/EXCHANGES.md line 24 (Kraken Futures): "complete trades".
COVERAGE: Coverage = "complete"
