"""BitMEX: exchange id, display name and coverage class."""

from __future__ import annotations

from typing import Final

from purpleflea.venues.venue import Coverage

EXCHANGE: Final = "bitmex"
DISPLAY_NAME: Final = "BitMEX"
#: shared/EXCHANGES.md line 20 (BitMEX): the feed shows liquidation orders resting in the book
#: and "many liquidations never appear": a partial sample of the tape, not every liquidation
#: and not a set of watched accounts, so the nearest class is snapshot.
COVERAGE: Coverage = "snapshot"
