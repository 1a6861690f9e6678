"""The served simulator's saved state: each save after the first writes what changed (a record
appended to a log beside the full state), and a load at any moment, a process killed in the
middle of a write included, gives back exactly the state of one save."""

from __future__ import annotations

import functools
import random
import shutil
from pathlib import Path

import numpy as np
import pytest

from purpleflea.sim import SimConfig, Simulator, resume, statelog
from purpleflea.sim.resume import SimState, StateSaver

#: A served market small enough to save a few dozen times in a test (its book: 71,590 slots).
MARKETS = 30


@functools.cache
def _warmed_up() -> Simulator:
    return Simulator(SimConfig.served(seed=4, n_markets=MARKETS))


def _states(blocks: int) -> list[SimState]:
    """The served market's state after each of its first ``blocks`` blocks (2.5 s each, the
    crash episode's first minute: the market moving fast)."""
    sim = Simulator.from_state(_warmed_up().config, _warmed_up().capture_state())
    states = []
    for _ in range(blocks):
        sim.next_block()
        states.append(sim.capture_state())
    return states


def _assert_same(loaded: SimState | None, saved: SimState) -> None:
    assert loaded is not None
    for field in ("seed", "epoch", "n_markets", "now_ms", "h_common", "next_cohort", "rng"):
        assert getattr(loaded, field) == getattr(saved, field), field
    assert loaded.crash_start_ms == saved.crash_start_ms
    assert np.array_equal(loaded.marks, saved.marks)
    for part in ("markets", "book"):
        ours, theirs = getattr(loaded, part), getattr(saved, part)
        assert ours.keys() == theirs.keys()
        for k in ours:
            assert ours[k].dtype == theirs[k].dtype, (part, k)
            assert np.array_equal(ours[k], theirs[k], equal_nan=True), (part, k)


def test_each_save_after_the_first_writes_what_changed_and_loads_back_exactly(
    tmp_path: Path,
) -> None:
    """A save wrote the whole state every time (16 MB for 275 markets, 5 GB in the demo's
    first hour): after the first, one writes the book's changed rows and the per-market
    arrays, under 3 % of the full state here (0.2-0.8 % for 275 markets, bench)."""
    path = tmp_path / "sim_state.npz"
    saver = StateSaver(path)
    states = _states(24)
    full = saver.save(states[0])
    assert full == path.stat().st_size + resume.log_path(path).stat().st_size
    assert full > 5_000_000  # the whole book
    written = [full] + [saver.save(state) for state in states[1:]]
    assert max(written[1:]) < 0.03 * full, written
    # What the saves say they wrote is what the files hold: the full state and the log.
    assert path.stat().st_size + resume.log_path(path).stat().st_size == sum(written)
    _assert_same(resume.load(path), states[-1])


def test_the_saver_keeps_its_own_copy_of_what_it_wrote(tmp_path: Path) -> None:
    """The live source captures each block into the same arrays: a state changed after its
    save must not become what the next save is compared with."""
    path = tmp_path / "sim_state.npz"
    saver = StateSaver(path)
    first, second = _states(2)
    kept = first.book["qty"].copy()
    saver.save(first)
    first.book["qty"][:] = second.book["qty"]  # overwritten in place, as by the next capture
    first.book["qty"][:5] = -1.0
    saver.save(second)
    loaded = resume.load(path)
    _assert_same(loaded, second)
    assert not np.array_equal(kept, second.book["qty"])  # the rows did change between them


def test_a_log_cut_anywhere_loads_the_state_of_the_last_whole_save(tmp_path: Path) -> None:
    """A process killed while appending leaves a record cut short: the load stops before it
    and gives the state of the save before, never a mix of the two."""
    path = tmp_path / "sim_state.npz"
    saver = StateSaver(path)
    states = _states(4)
    ends = []  # the log's length after each save
    for state in states:
        saver.save(state)
        ends.append(resume.log_path(path).stat().st_size)
    log = resume.log_path(path).read_bytes()
    rng = random.Random(7)
    cuts = {0, 1, len(statelog.MAGIC), ends[0] - 1}
    for end in ends:
        cuts |= {end - 1, end, end + 1, end + 8}
    cuts |= {rng.randrange(ends[0], ends[-1]) for _ in range(12)}
    for cut in sorted(c for c in cuts if 0 <= c <= len(log)):
        resume.log_path(path).write_bytes(log[:cut])
        whole = max(n for n, end in enumerate(ends) if end <= cut) if cut >= ends[0] else 0
        _assert_same(resume.load(path), states[whole])


def test_a_corrupt_record_ends_the_log_there(tmp_path: Path) -> None:
    path = tmp_path / "sim_state.npz"
    saver = StateSaver(path)
    states = _states(3)
    ends = []
    for state in states:
        saver.save(state)
        ends.append(resume.log_path(path).stat().st_size)
    log = bytearray(resume.log_path(path).read_bytes())
    log[ends[1] - 5] ^= 0xFF  # inside the second record: its CRC no longer matches
    resume.log_path(path).write_bytes(bytes(log))
    _assert_same(resume.load(path), states[0])


def test_a_log_left_from_an_older_full_state_is_not_applied(tmp_path: Path) -> None:
    """Killed between writing a new full state and starting its log: the old log (records of
    the old full state) stays beside the new one and must not be applied to it."""
    path = tmp_path / "sim_state.npz"
    saver = StateSaver(path)
    states = _states(4)
    for state in states[:3]:
        saver.save(state)
    old_log = tmp_path / "old.log"
    shutil.copy(resume.log_path(path), old_log)
    resume.save(path, states[3])
    shutil.copy(old_log, resume.log_path(path))
    _assert_same(resume.load(path), states[3])


def test_the_log_never_outgrows_the_full_state(tmp_path: Path) -> None:
    """Each record is appended until the log would be larger than the full state: then the
    full state is written again and the log starts over."""
    path = tmp_path / "sim_state.npz"
    saver = StateSaver(path)
    state = _states(1)[0]
    rng = np.random.default_rng(3)
    written = []
    for _ in range(12):
        # A fifth of the positions change each time: a record of ~20 % of the full state.
        rows = rng.choice(len(state.book["qty"]), len(state.book["qty"]) // 5, replace=False)
        state.book["qty"][rows] *= 1.5
        written.append(saver.save(state))
        assert resume.log_path(path).stat().st_size <= path.stat().st_size * 1.01
        _assert_same(resume.load(path), state)
    full = written[0]
    rewrites = [n for n, size in enumerate(written) if size >= full * 0.9]
    assert rewrites[0] == 0, written
    assert len(rewrites) >= 2, written
    assert all(size < full * 0.3 for n, size in enumerate(written) if n not in rewrites)


def test_after_a_failed_save_the_next_one_is_written_in_full(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A failed append (a full disk) may leave part of a record: appending after it would put
    every later record past the cut a load stops at, so the next save starts afresh."""
    path = tmp_path / "sim_state.npz"
    saver = StateSaver(path)
    states = _states(4)
    full = saver.save(states[0])
    saver.save(states[1])

    def disk_full(*_args: object) -> bytes:
        with resume.log_path(path).open("ab") as handle:
            handle.write(b"\x00\x01\x02")  # what got out before the error
        raise OSError(28, "No space left on device")

    with monkeypatch.context() as patched:
        patched.setattr(resume, "changes", disk_full)
        with pytest.raises(OSError, match="No space left"):
            saver.save(states[2])
    _assert_same(resume.load(path), states[1])
    assert saver.save(states[3]) >= full * 0.9
    _assert_same(resume.load(path), states[3])


def test_a_state_saved_before_the_log_was_kept_still_loads(tmp_path: Path) -> None:
    """A full state written by an earlier version (no log token in its header) loads as it
    is, whatever file lies where the log would be."""
    path = tmp_path / "sim_state.npz"
    state = _states(1)[0]
    resume.save(path, state)
    with np.load(path) as data:
        arrays = {k: data[k] for k in data.files}
    header = arrays["header"].item().replace('"log": ', '"unused": ')
    with path.open("wb") as handle:
        np.savez(handle, **{**arrays, "header": np.array(header)})
    resume.log_path(path).write_bytes(b"anything")
    _assert_same(resume.load(path), state)
