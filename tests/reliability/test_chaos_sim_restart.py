"""`purpleflea serve --source sim` killed at moments drawn from a fixed seed, then started again:
the market continues (docs/simulator.md, "Restarts continue the market"): every market's
first mark after the restart is within 1 % of its last mark before the kill, whatever the
signal, SIGKILL included, and the stored events keep their seqs with the new ones above.
"""

from __future__ import annotations

import random
import signal
import time
from pathlib import Path

import httpx

from purpleflea.sim.markets import universe
from tests.reliability.chaos import (
    describe_signal,
    kill,
    make_key,
    read_mark,
    serve,
    stored,
    wait_until,
)

SEED = 12_07
MARKETS = 12
SPEED = 2.0
FLAGS = (
    "--source",
    "sim",
    "--markets",
    str(MARKETS),
    "--speed",
    str(SPEED),
    "--rate-limit",
    "1000",
    "--rate-burst",
    "1000",
)


def _marks(url: str, key: str, names: list[str]) -> dict[str, float]:
    marks = {}
    with httpx.Client(base_url=url, headers={"X-API-Key": key}, timeout=10) as http:
        for name in names:
            answer = http.get(f"/v1/heatmap/{name}")
            if answer.status_code == 200:
                marks[name] = float(answer.json()["mark_price"])
    return marks


def _one_kill(tmp_path: Path, kill_at: float, sig: int, trial: int) -> str:
    """Serve, kill with ``sig`` ``kill_at`` wall seconds after the start (or once every mark
    is served, if later), serve again on the same folder; what happened, in a line."""
    data = tmp_path / f"data{trial}"
    db = data / "purpleflea.sqlite"
    key = make_key(data)
    log = tmp_path / f"serve{trial}.log"
    names = [spec.name for spec in universe(MARKETS)]
    with serve(data, log, *FLAGS) as first:
        started = time.monotonic()
        wait_until(lambda: len(_marks(first.url, key, names)) == MARKETS, 60, "every mark")
        last = _marks(first.url, key, names)
        while time.monotonic() - started < kill_at:
            last = _marks(first.url, key, names)
        last = _marks(first.url, key, names)
        code = kill(first.process, sig)
    held = stored(db)
    mark = read_mark(db)
    what = (
        f"trial {trial}: {describe_signal(sig)} {kill_at:.1f} s in (exit {code}, "
        f"{len(held)} events stored, seq mark {None if mark is None else mark['seq']})"
    )
    with serve(data, log, *FLAGS) as second:
        wait_until(lambda: len(_marks(second.url, key, names)) == MARKETS, 60, f"{what}: marks")
        again = _marks(second.url, key, names)
        wait_until(lambda: len(stored(db)) > len(held), 60, f"{what}: new events stored")
    moved = {n: round(abs(again[n] / last[n] - 1) * 100, 2) for n in names}
    what += f": the marks moved up to {max(moved.values())} %"
    assert max(moved.values()) < 1.0, (what, moved, last, again)
    after = stored(db)
    assert all(dict(after).get(seq) == event_id for seq, event_id in held), what
    # Every seq the first server published is stored (a batch is published after it is
    # stored) or below its mark (reserved before publishing); killed before either, it
    # published none, and the new seqs need only be new.
    published = [seq for seq, _ in held]
    if mark is not None:
        published.append(int(mark["seq"]))  # type: ignore[call-overload]
    top = max(published, default=0)
    assert min(seq for seq, _ in after if seq > (held[-1][0] if held else 0)) > top, what
    return what


def test_a_killed_simulator_continues_its_prices_after_the_restart(tmp_path: Path) -> None:
    rng = random.Random(SEED)
    done = [
        # Wall seconds after the start: inside the crash episode, the market moving fast.
        _one_kill(tmp_path, rng.uniform(3.0, 40.0), sig, trial)
        for trial, sig in enumerate((signal.SIGKILL, signal.SIGTERM, signal.SIGKILL))
    ]
    assert len(done) == 3
    print("\n".join(done))  # the figures, for `pytest -s`


def test_a_simulator_killed_before_its_first_event_continues_its_prices(tmp_path: Path) -> None:
    # Killed as soon as its marks are served: as CI's loaded first trial (3-40 s drawn, the
    # marks came later), before any event was stored or a seq mark written.
    print(_one_kill(tmp_path, 0.0, signal.SIGKILL, 0))
