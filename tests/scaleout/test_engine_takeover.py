"""A standby ingest node that takes the sequencer lock over continues the cascade engine.

Its engine's state is in the PostgreSQL store's database (server/engine_state_postgres.py),
not in a file beside the failed node's store, which a standby on another machine could not
read: before, every takeover warmed an engine from the stored events (14-47 cascades
followed by only one of the two engines, bench/warm_causes.py).
"""

from __future__ import annotations

from pathlib import Path

from tests.scaleout.cluster import cluster, until, write_events

CONTINUED = "cascade engine continued from PostgreSQL store"


async def test_a_standby_taking_over_continues_the_engine_of_the_node_it_replaces(
    tmp_path: Path,
) -> None:
    replay = tmp_path / "burst.jsonl"
    write_events(replay, "burst", 600, spacing_ms=10)
    async with cluster(tmp_path) as services:
        args = ("--source", "replay", "--replay", str(replay), "--speed", "1")
        first = services.node("first", "ingest", *args, data_dir="first")
        standby = services.node("standby", "ingest", "--source", "none", data_dir="standby")
        await services.start(first)
        standby.spawn()  # waits for the lock: no HTTP until it holds it
        await until(lambda: len(services.stored()) >= 200, 60, "200 stored")
        first.stop()  # SIGTERM: the engine's state written at the stop, in the database
        await standby.wait_ready()
        log = standby.log.read_text()
        assert CONTINUED in log, log[-3000:]
        assert "cascade engine warmed" not in log
