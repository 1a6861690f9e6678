"""What every connection spec shares: compact JSON messages and subscription batching."""

from __future__ import annotations

import json
from collections.abc import Sequence

from purpleflea.model import Catalog


def compact_json(value: object) -> str:
    return json.dumps(value, separators=(",", ":"))


def chunks(items: Sequence[str], size: int) -> list[list[str]]:
    return [list(items[i : i + size]) for i in range(0, len(items), size)]


def symbols_of(instruments: Catalog, kind: str | None = None) -> list[str]:
    """Sorted symbols of ``instruments`` (of one contract kind if given)."""
    return sorted(s for s, i in instruments.items() if kind is None or i.kind == kind)
