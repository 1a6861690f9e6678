"""docs/live.md says what the bundled instrument snapshot holds; the numbers stay true."""

from __future__ import annotations

import re

from purpleflea.ingest.catalog import load_snapshot
from purpleflea.venues import registry
from tests.conftest import REPO


def test_the_documented_snapshot_counts_are_the_bundled_ones() -> None:
    text = " ".join((REPO / "docs" / "live.md").read_text().split())
    found = re.search(r"`venues/instruments\.json`, (\d+) instruments: ([^)]+)\)", text)
    assert found, "docs/live.md no longer describes the bundled snapshot"
    snapshot = load_snapshot()
    assert int(found.group(1)) == sum(len(rows) for rows in snapshot.values())
    documented = dict(
        re.fullmatch(r"(.+) (\d+)", part.strip()).groups()  # type: ignore[union-attr]
        for part in found.group(2).split(",")
    )
    actual = {registry.exchange(ex).display_name: str(len(rows)) for ex, rows in snapshot.items()}
    assert documented == actual
