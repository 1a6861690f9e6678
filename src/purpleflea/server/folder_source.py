"""Which market a data folder holds: simulated or real, never both served as one history.

A folder the simulator wrote (its state file, or events whose ids the simulator made) served
with ``--source live`` served the simulated events as the live market's history, counted the
simulator's uptime as the exchanges' coverage and sent the simulated cascades' "exhausted"
alerts at the live start; the simulator started in a folder of live events mixes the other
way. :func:`mixed_source` names the conflict before the server opens anything.

Recorded history (``purpleflea import``) is real events too, whichever venue's: the importer
refuses a simulator's folder (:func:`simulated_market`), and the simulator refuses a folder
any history was imported into (its imported hours, ``coverage_imports``). Without the second,
real Hyperliquid history imported after a demo (both default to ``./data``) was continued by
the simulator: its own Hyperliquid-shaped events are passed over, so the real ones were too.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from pathlib import Path

from purpleflea.server.sources import SIM_STATE_FILE
from purpleflea.venues import registry

#: Every simulated event's id starts with this (``sim.config``: ``sim-<seed>-<start>-<n>``).
SIM_ID_PREFIX = "sim-"


def newest_event_id(db_path: Path, besides: Sequence[str] = ()) -> str | None:
    """The id of the store's newest event (of an exchange not in ``besides``), or None (no
    store yet, or no such event in it)."""
    if not db_path.exists():
        return None
    try:
        db = sqlite3.connect(f"{db_path.resolve().as_uri()}?mode=ro", uri=True)
    except sqlite3.Error:
        return None  # the store's own open says what is wrong with it
    where = f" WHERE exchange NOT IN ({', '.join('?' * len(besides))})" if besides else ""
    try:
        row = db.execute(
            f"SELECT id FROM liquidations{where} ORDER BY seq DESC LIMIT 1", tuple(besides)
        ).fetchone()
    except sqlite3.Error:
        return None  # no table yet
    finally:
        db.close()
    return str(row[0]) if row is not None else None


def imported_exchanges(db_path: Path) -> list[str]:
    """The exchanges whose history was imported into the store (``purpleflea import`` records
    every imported exchange-hour), sorted; empty for none or no store yet."""
    if not db_path.exists():
        return []
    try:
        db = sqlite3.connect(f"{db_path.resolve().as_uri()}?mode=ro", uri=True)
    except sqlite3.Error:
        return []  # the store's own open says what is wrong with it
    try:
        rows = db.execute("SELECT DISTINCT exchange FROM coverage_imports ORDER BY 1").fetchall()
    except sqlite3.Error:
        return []  # no table: nothing was imported
    finally:
        db.close()
    return [str(row[0]) for row in rows]


def simulated_market(data_dir: Path, db_path: Path) -> str | None:
    """What makes ``data_dir`` the simulator's folder (its state file, or its newest event's
    simulated id), or None."""
    if (data_dir / SIM_STATE_FILE).exists():
        return f"its state {SIM_STATE_FILE}"
    newest = newest_event_id(db_path)
    if newest is not None and newest.startswith(SIM_ID_PREFIX):
        return f"the newest: {newest!r}"
    return None


def simulated_venues() -> tuple[str, ...]:
    """The exchanges whose share of the simulated market the simulator's folder holds under
    ids shaped as the venue's own (its simulated accounts, sampled as the real ones are)."""
    return tuple(s.exchange for s in registry.position_sources() if s.simulated is not None)


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
        # refused as "holds real events" when it was the newest): with its state file, those
        # venues' events are passed over. Not every id: real history imported into the
        # simulator's folder (both default to ./data) was continued as its market.
        if newest is not None and not newest.startswith(SIM_ID_PREFIX) and simulated_state:
            newest = newest_event_id(db_path, besides=simulated_venues())
        if newest is not None and not newest.startswith(SIM_ID_PREFIX):
            return (
                f"data dir {data_dir} holds real events (the newest: {newest!r}); the "
                f"simulator would add its market to their history: {other_folder}"
            )
        imported = imported_exchanges(db_path)
        if imported:
            return (
                f"data dir {data_dir} holds imported history (of {', '.join(imported)}); the "
                f"simulator would add its market to it: {other_folder}"
            )
        return None
    what = simulated_market(data_dir, db_path)
    if what is not None:
        return (
            f"data dir {data_dir} holds a simulated market ({what}); --source {source} would "
            f"serve its events as the real market's history: {other_folder}"
        )
    return None
