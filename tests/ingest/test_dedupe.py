"""The dedupe window keys ids by a 60-bit hash: its memory no longer grows with the ids'
length, and it still tells every distinct id from a repeat (bench/results/soak.md)."""

from __future__ import annotations

import gc
import random
import tracemalloc

from purpleflea.ingest.dedupe import Deduper


def _hyperliquid_like(i: int) -> str:
    """A long id (141 characters), like a Hyperliquid fill's: hash, address, coin, trade id."""
    return f"hyperliquid:0x{i:064x}:0x{i * 7:040x}:BTC:{10**14 + i}"


def test_the_window_holds_an_id_in_under_100_bytes_whatever_its_length() -> None:
    # 50,000 long ids seen in batches (the sequencer's: one ``now`` per batch), each string
    # dropped by its maker after the call: what stays is what the window keeps. Keyed by the
    # whole string it kept ~309 bytes an id (the string alone 190); by a 60-bit key ~74.
    ids = 50_000
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        deduper = Deduper(ttl=3_600.0, max_size=500_000)
        for i in range(ids):
            assert not deduper.seen(_hyperliquid_like(i), float(i // 2_000))
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert len(deduper) == ids
    assert held / ids < 100, f"{held / ids:.0f} bytes an id"


def test_distinct_ids_are_never_taken_for_repeats_and_repeats_always_are() -> None:
    # 200,000 distinct random ids of the shapes venues send (content ids, hex hashes, the
    # simulator's counters), in a window that holds them all; then every one again.
    rng = random.Random(20261207)
    shapes = (
        lambda n: f"okx:BTC-USDT-SWAP:{1796000000000 + n}:long:sell:{rng.random():.6f}:6.1e4",
        lambda n: f"hyperliquid:0x{rng.getrandbits(256):064x}:BTC:{n}",
        lambda n: f"sim-{rng.randrange(10)}-1796000000000-{n}",
    )
    ids = list(dict.fromkeys(shapes[n % 3](n) for n in range(200_000)))
    assert len(ids) == 200_000
    deduper = Deduper(ttl=3_600.0, max_size=500_000)
    firsts = [deduper.seen(event_id, 0.0) for event_id in ids]
    assert not any(firsts), f"{sum(firsts)} distinct ids dropped as repeats"
    rng.shuffle(ids)
    assert all(deduper.seen(event_id, 1.0) for event_id in ids)
    assert len(deduper) == 200_000


def test_ids_seen_at_one_now_expire_together_and_the_rest_stay() -> None:
    # Ids of one call time share an expiry (a run); a later id sharing none stays held.
    deduper = Deduper(ttl=10.0)
    for event_id in ("a", "b", "c"):
        assert not deduper.seen(event_id, 0.0)
    assert not deduper.seen("d", 1.0)
    assert len(deduper) == 4
    assert deduper.seen("c", 9.9)
    assert not deduper.seen("e", 10.0)  # a, b and c expired at 10; d and e held
    assert len(deduper) == 2
    assert deduper.seen("d", 10.5)
    assert not deduper.seen("a", 10.5)
