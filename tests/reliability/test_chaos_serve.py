"""`purpleflea serve` killed (SIGKILL, SIGTERM, SIGINT) during a burst, at moments drawn from a
fixed seed, then started again on the same folder replaying the same file.

After each kill and restart: every event a client was sent before the kill is stored once,
under the seq it was sent with; no seq is given twice across the restart (the seq mark is at
or above every seq sent, and exact after a clean stop); the replay's events are all stored,
each once (what the kill dropped unstored comes again, deduplicated by id); and a client
resuming from its last seq gets exactly the stored events after it, in order.
"""

from __future__ import annotations

import random
import signal
from pathlib import Path

from tests.reliability.chaos import (
    SIGNALS,
    Consumer,
    describe_signal,
    kill,
    make_key,
    read_mark,
    serve,
    stored,
    stored_alert_seqs,
    wait_until,
    write_events,
)

SEED = 20261207
EVENTS = 1_500


def _one_kill(tmp_path: Path, rng: random.Random, sig: int, trial: int) -> str:
    data = tmp_path / f"data{trial}"
    db = data / "purpleflea.sqlite"
    replay = tmp_path / f"burst{trial}.jsonl"
    ids = write_events(replay, f"t{trial}", EVENTS, spacing_ms=rng.choice((1, 2, 4)))
    key = make_key(data)
    log = tmp_path / f"serve{trial}.log"
    kill_after = rng.randint(1, EVENTS * 3 // 4)
    args = ("--source", "replay", "--replay", str(replay), "--speed", "1")
    with serve(data, log, *args) as first, Consumer(first.url, key).running() as before:
        wait_until(lambda: len(before.seen) >= kill_after, 60, f"{kill_after} events sent")
        code = kill(first.process, sig)
    sent = before.seen
    what = f"trial {trial}: {describe_signal(sig)} after {len(sent)} events sent (exit {code})"
    mark = read_mark(db)
    held = stored(db)
    assert mark is not None, what
    top = max([s for s, _ in held] + stored_alert_seqs(db) + [0])
    assert int(mark["seq"]) >= top, (what, mark, top)  # type: ignore[call-overload]
    if sig != signal.SIGKILL:
        # A clean stop writes the exact last seq: the next start continues right after it.
        assert mark["clean"] is True, (what, mark)
        assert mark["seq"] == top, (what, mark, top)
    by_seq = dict(held)
    assert all(by_seq.get(seq) == event_id for seq, event_id in sent), what

    with serve(data, log, *args) as second:
        wait_until(lambda: len(stored(db)) >= EVENTS, 60, f"{what}: every event stored")
        after = stored(db)
        with Consumer(second.url, key, since_seq=sent[-1][0]).running() as resumed:
            missing = [row for row in after if row[0] > sent[-1][0]]
            wait_until(lambda: len(resumed.seen) >= len(missing), 60, f"{what}: the resume")
    # Each event once, every event of the file, the old ones under their old seqs.
    assert sorted(event_id for _, event_id in after) == sorted(ids), what
    assert all(dict(after).get(seq) == event_id for seq, event_id in held), what
    # New seqs come after everything the mark covered, never below it.
    new = [seq for seq, _ in after if seq not in by_seq]
    assert not new or min(new) > int(mark["seq"]), (what, mark, min(new))  # type: ignore[call-overload]
    # The resumed client got exactly the stored events after its cursor, in order, once.
    assert resumed.seen == missing, what
    return what


def test_serve_killed_at_random_moments_of_a_burst_loses_and_repeats_nothing(
    tmp_path: Path,
) -> None:
    rng = random.Random(SEED)
    done = []
    for trial, sig in enumerate(SIGNALS * 2):
        done.append(_one_kill(tmp_path, rng, sig, trial))
    assert len(done) == 6
