"""The ingest node on PostgreSQL + NATS JetStream killed (SIGKILL, SIGTERM, SIGINT) at moments
drawn from a fixed seed, mid-replay, and started again replaying the same file.

Across every kill: what the store held stays under its seq, each replayed event is stored
once (the restart's repeats dedupe against the store), and a client on an API node, which
stays up throughout and resumes by itself, receives every stored event exactly once, in
seq order, including what a killed node stored but never published (the API node backfills
it from the store).
"""

from __future__ import annotations

import random
import signal
from pathlib import Path

from tests.scaleout.cluster import Reader, cluster, reading, until, write_events

SEED = 4222
EVENTS = 1_200


async def test_an_ingest_node_killed_at_random_moments_loses_and_repeats_nothing(
    tmp_path: Path,
) -> None:
    rng = random.Random(SEED)
    replay = tmp_path / "burst.jsonl"
    write_events(replay, "burst", EVENTS, spacing_ms=10)
    async with cluster(tmp_path) as services:
        args = ("--source", "replay", "--replay", str(replay), "--speed", "1")
        ingest = services.node("ingest", "ingest", *args, data_dir="ingest")
        api = services.node("api", "api")
        await services.start(api, ingest)
        reader = Reader([api.url], services.key)
        kept: dict[int, str] = {}
        async with reading([reader]):
            for sig in (signal.SIGKILL, signal.SIGTERM, signal.SIGINT):
                target = len(services.stored()) + rng.randint(20, 250)

                def reached(count: int = target) -> bool:
                    return len(services.stored()) >= count

                await until(reached, 60, f"{target} stored")
                assert ingest.process is not None
                ingest.process.send_signal(sig)
                ingest.process.wait(30)
                before = services.stored()
                what = f"{signal.Signals(sig).name} with {len(before)} stored"
                # What was stored stays, under its seq.
                assert all(before.get(seq) == item for seq, item in kept.items()), what
                kept = before
                await services.start(ingest)
            done = sum(i.startswith("burst") for i in kept.values())
            assert done < EVENTS, "the replay should still have been running at the last kill"

            def replayed() -> bool:
                return sum(i.startswith("burst") for i in services.stored().values()) >= EVENTS

            await until(replayed, 90, "every replayed event stored")
            ingest.stop()
            final = services.stored()
            await until(lambda: reader.seqs[-1:] == [max(final)], 60, "the reader to catch up")
        assert all(final.get(seq) == item for seq, item in kept.items())
        events = [i for i in final.values() if i.startswith("burst")]
        assert sorted(events) == sorted(f"burst:{n}" for n in range(EVENTS))
        # Every stored event and alert reached the client once, in order.
        assert reader.seqs == sorted(final)
        assert [item.id for item in reader.items] == [final[seq] for seq in sorted(final)]
