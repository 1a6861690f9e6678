"""Which market a data folder holds: simulated or real, never both served as one history.

A folder the simulator wrote (its state file, or events whose ids the simulator made) served
with ``--source live`` served the simulated events as the live market's history, counted the
simulator's uptime as the exchanges' coverage and sent the simulated cascades' "exhausted"
alerts at the live start; the simulator started in a folder of live events mixes the other
way. :func:`mixed_source` names the conflict before the server opens anything.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from purpleflea.server.sources import SIM_STATE_FILE

#: Every simulated event's id starts with this (``sim.config``: ``sim-<seed>-<start>-<n>``).
SIM_ID_PREFIX = "sim-"


def newest_event_id(db_path: Path) -> str | None:
    """The id of the store's newest event, or None (no store yet, or no event in it)."""
    if not db_path.exists():
        return None
    try:
        db = sqlite3.connect(f"{db_path.resolve().as_uri()}?mode=ro", uri=True)
    except sqlite3.Error:
        return None  # the store's own open says what is wrong with it
    try:
        row = db.execute("SELECT id FROM liquidations ORDER BY seq DESC LIMIT 1").fetchone()
    except sqlite3.Error:
        return None  # no table yet
    finally:
        db.close()
    return str(row[0]) if row is not None else None


def mixed_source(data_dir: Path, db_path: Path, source: str) -> str | None:
    """Why serving ``source`` from ``data_dir`` would mix simulated and real events, or None."""
    if source not in ("sim", "live", "replay"):
        return None
    newest = newest_event_id(db_path)
    simulated_state = (data_dir / SIM_STATE_FILE).exists()
    other_folder = "choose another --data-dir (or remove this one to start over)"
    if source == "sim":
        # The simulator's own folder may end with an event of the demo's simulated
        # Hyperliquid accounts, whose ids are shaped as the real venue's (a restart was
        # refused as "holds real events" when it was the newest): its state file says whose.
        if newest is not None and not newest.startswith(SIM_ID_PREFIX) and not simulated_state:
            return (
                f"data dir {data_dir} holds real events (the newest: {newest!r}); the "
                f"simulator would add its market to their history: {other_folder}"
            )
        return None
    if simulated_state or (newest is not None and newest.startswith(SIM_ID_PREFIX)):
        what = f"its state {SIM_STATE_FILE}" if simulated_state else f"the newest: {newest!r}"
        return (
            f"data dir {data_dir} holds a simulated market ({what}); --source {source} would "
            f"serve its events as the real market's history: {other_folder}"
        )
    return None
