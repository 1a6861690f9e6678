"""Bulk history into a store, the sim command, and real-time pacing."""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

import pytest

from purpleflea.model import VenueLiquidation
from purpleflea.sim import SimConfig, Simulator, generate_history, paced
from purpleflea.store.base import Query
from purpleflea.store.sqlite import SQLiteStore


async def test_history_goes_into_sqlite_with_consecutive_seqs(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "h.sqlite")
    try:
        first = await generate_history(store, days=0.05, seed=4, n_markets=20, progress=False)
        assert first.events > 100
        assert (first.first_seq, first.last_seq) == (1, first.events)
        assert await store.last_seq() == first.events
        stored = await store.since(0, limit=first.events + 10)
        assert [e.seq for e in stored] == list(range(1, first.events + 1))
        assert all(e.id.startswith("sim-4-") and e.received_at > e.ts for e in stored)
        assert sum(e.size_usd for e in stored) == pytest.approx(first.notional_usd)
        page = await store.query(Query(markets=("BTC-PERP",), limit=5))
        assert page.events
        assert all(e.market == "BTC-PERP" for e in page.events)

        scored: list[VenueLiquidation] = []

        def scorer(event: VenueLiquidation) -> int:
            scored.append(event)
            return 7

        second = await generate_history(
            store, days=0.02, seed=5, n_markets=20, scorer=scorer, progress=False
        )
        assert second.first_seq == first.events + 1
        assert len(scored) == second.events
        tail = await store.since(first.events, limit=10)
        assert tail
        assert all(e.cascade_score == 7 and e.id.startswith("sim-5-") for e in tail)
    finally:
        await store.close()


def test_history_is_the_same_for_the_same_seed(tmp_path: Path) -> None:
    async def ids(path: Path) -> list[tuple[str, float]]:
        store = SQLiteStore(path)
        try:
            await generate_history(store, days=0.02, seed=8, n_markets=10, progress=False)
            return [(e.id, e.size_usd) for e in await store.since(0, limit=100_000)]
        finally:
            await store.close()

    assert asyncio.run(ids(tmp_path / "a.sqlite")) == asyncio.run(ids(tmp_path / "b.sqlite"))


def test_sim_command_writes_the_store_and_prints_a_summary(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from purpleflea.commands import sim

    parser = argparse.ArgumentParser()
    sim.register(parser.add_subparsers(dest="command"))
    path = tmp_path / "cli.sqlite"
    args = parser.parse_args(
        [
            "sim",
            "--days",
            "0.02",
            "--store",
            str(path),
            "--markets",
            "8",
            "--no-progress",
            "--start",
            "2025-03-01",
        ]
    )
    assert args.run(args) == 0
    out = capsys.readouterr().out
    assert "2025-03-01 00:00" in out
    assert "events" in out
    assert "cascades" in out
    assert path.exists()
    bad = parser.parse_args(["sim", "--days", "0", "--store", str(path)])
    assert bad.run(bad) == 2
    with pytest.raises(SystemExit):
        parser.parse_args(["sim", "--days", "1", "--start", "March"])


async def test_paced_follows_the_wall_clock() -> None:
    sim = Simulator(SimConfig(n_markets=5))
    loop = asyncio.get_running_loop()
    began = loop.time()
    steps = []
    async for step in paced(sim, speed=20.0):  # 250 ms steps -> 12.5 ms each
        steps.append(step)
        if len(steps) == 16:
            break
    elapsed = loop.time() - began
    assert steps[-1].ts - steps[0].ts == 15 * 250
    assert 16 * 0.25 / 20 * 0.9 <= elapsed < 2.0
    with pytest.raises(ValueError, match="speed"):
        await anext(paced(sim, speed=0))
