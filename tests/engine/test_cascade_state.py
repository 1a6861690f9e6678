"""An engine continued from :meth:`CascadeEngine.export_state` is the engine that wrote it."""

from __future__ import annotations

import msgspec
import pytest

from purpleflea.engine import CascadeConfig, CascadeEngine
from purpleflea.model import CascadeAlert

T0 = 1_760_000_000_000


def _crash(engine: CascadeEngine, start: int, n: int) -> list[object]:
    """A falling market liquidating longs faster and faster, open interest and fuel told on
    the way, ticks between; everything the engine says."""
    said: list[object] = []
    for i in range(n):
        ts = start + 400 * i
        said.append(
            engine.observe("BTC-PERP", "long", 20_000.0 * (1 + i // 20), 60_000 - 5 * i, ts, "a")
        )
        if i % 50 == 0:
            engine.set_open_interest("BTC-PERP", 5e8 - 1e6 * i, "a:BTCUSDT")
            engine.set_fuel("BTC-PERP", "long", 1.5)
        if i % 7 == 0:
            said.extend(engine.tick(ts + 300))
        said.extend(engine.drain_alerts())
    return said


def _roundtrip(engine: CascadeEngine, into: CascadeEngine) -> None:
    into.restore_state(msgspec.msgpack.decode(msgspec.msgpack.encode(engine.export_state())))


def test_a_continued_engine_follows_the_same_cascades_and_says_the_same() -> None:
    before = CascadeEngine(fill_priced=["a"])
    _crash(before, T0, 150)
    assert before.active(), "a cascade is under way at the stop"
    after = CascadeEngine(fill_priced=["a"])
    _roundtrip(before, after)
    assert after.active() == before.active()
    later = T0 + 400 * 150
    assert _crash(after, later, 300) == _crash(before, later, 300)
    assert any(
        isinstance(x, CascadeAlert) and x.status == "exhausted"
        for x in _crash(after, later + 10**7, 1)
    )


def test_a_state_of_another_config_is_refused_and_changes_nothing() -> None:
    before = CascadeEngine(fill_priced=["a"])
    _crash(before, T0, 150)
    other = CascadeEngine(CascadeConfig(start_score=8), fill_priced=["a"])
    with pytest.raises(ValueError, match="another config"):
        _roundtrip(before, other)
    assert other.active() == []
    with pytest.raises(ValueError, match="fill-priced"):
        _roundtrip(before, CascadeEngine(fill_priced=["b"]))


def test_queued_alerts_are_not_part_of_a_state() -> None:
    engine = CascadeEngine()
    for i in range(150):
        engine.observe(
            "BTC-PERP", "long", 20_000.0 * (1 + i // 20), 60_000 - 5 * i, T0 + 400 * i, "a"
        )
    with pytest.raises(ValueError, match="drain"):
        engine.export_state()


def test_a_saved_state_holds_every_field_of_a_side_and_its_cascade() -> None:
    """The saved fields are listed by name (the compiled engine's classes have no
    ``__slots__`` to read them from at run time): a field added to the engine's state and not
    to the list would be lost at every clean restart, the restored engine no longer the one
    that stopped. The pure module's slots are the check."""
    from purpleflea.engine import cascade

    side_slots = set(cascade._State.__slots__) - {"cascade", "market", "side"}
    assert set(cascade._SIDE_FIELDS) == side_slots
    assert set(cascade._CASCADE_FIELDS) | {"exchanges"} == set(cascade._Cascade.__slots__)


def _damaged(state: dict[str, object], how: str) -> dict[str, object]:
    damaged = msgspec.msgpack.decode(msgspec.msgpack.encode(state))
    if how == "short yardstick":
        damaged["oi_yard"]["BTC-PERP"] = [5e8]
    elif how == "infinite yardstick time":
        damaged["oi_yard"]["BTC-PERP"] = [5e8, float("inf")]
    else:
        damaged["markets"]["BTC-PERP"][0]["win_n"] = float("inf")
    return damaged


@pytest.mark.parametrize(
    "how",
    ["short yardstick", "infinite yardstick time", "infinite side count"],
)
def test_a_damaged_state_is_refused_as_malformed_and_changes_nothing(how: str) -> None:
    # A state the disk damaged but msgpack still reads: the start continues the one before
    # on a ValueError, and IndexError or OverflowError crossed it (the start failed).
    before = CascadeEngine(fill_priced=["a"])
    _crash(before, T0, 150)
    state = before.export_state()
    into = CascadeEngine(fill_priced=["a"])
    with pytest.raises(ValueError, match="malformed"):
        into.restore_state(_damaged(state, how))
    assert into.export_state() == CascadeEngine(fill_priced=["a"]).export_state()
