"""Property tests: a normalizer fed any corruption of a valid frame either raises its own
FrameError or yields well-formed events — never a KeyError/TypeError, never a NaN, infinite or
negative size.

The valid frames are every fixture of shared/ (through ``CASES``) plus our own frames in
``tests/venues/frames/`` (see ``EXTRA``).
"""

from __future__ import annotations

import copy
import gzip
import json
import math
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from purpleflea.model import VenueLiquidation
from purpleflea.venues import FrameError, PartialFrame
from tests.conftest import shared_dir
from tests.venues.frame_catalog import frame_files, normalizer_for_frame_file
from tests.venues.test_fixtures import CASES

Normalize = Callable[[bytes], list[VenueLiquidation]]


def _samples() -> list[tuple[str, Normalize, bytes]]:
    samples = [
        (name, normalize, (shared_dir() / "fixtures" / "exchanges" / f"{name}.json").read_bytes())
        for name, normalize in CASES.items()
    ]
    for path in frame_files():
        samples.append((path.stem, normalizer_for_frame_file(path.stem), path.read_bytes()))
    return samples


SAMPLES = _samples()
IDS = [name for name, _, _ in SAMPLES]

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.sampled_from(["", "-1", "0", "1e400", "-1e400", "NaN", "inf", "1" * 400, "0.0", "abc"]),
)
json_values = st.recursive(
    json_scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=3), st.dictionaries(st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=6,
)


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix] if prefix else []
    if isinstance(node, dict):
        for key, value in node.items():
            found += _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found += _paths(value, (*prefix, index))
    return found


def _mutate(document: Any, path: tuple[Any, ...], action: str, value: Any) -> Any:
    mutated = copy.deepcopy(document)
    parent = mutated
    for step in path[:-1]:
        parent = parent[step]
    last = path[-1]
    if action == "delete":
        del parent[last]
    else:
        parent[last] = value
    return mutated


def _check(normalize: Normalize, frame: bytes) -> None:
    try:
        events = normalize(frame)
    except PartialFrame as partial:  # the rows it could read must be as well-formed
        events = partial.events
    except FrameError:
        return
    for event in events:
        assert event.side in ("long", "short")
        assert math.isfinite(event.price)
        assert event.price > 0
        for size in (event.quantity, event.size_usd):
            assert size is None or (math.isfinite(size) and size >= 0), event
        assert event.id


@pytest.mark.parametrize(("name", "normalize", "raw"), SAMPLES, ids=IDS)
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_mutated_frames_raise_only_frame_error(
    name: str, normalize: Normalize, raw: bytes, data: st.DataObject
) -> None:
    document = json.loads(gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw)
    paths = _paths(document)
    assert paths, name
    path = data.draw(st.sampled_from(paths))
    action = data.draw(st.sampled_from(["delete", "replace"]))
    value = data.draw(json_values)
    text = json.dumps(_mutate(document, path, action, value)).encode()
    _check(normalize, text)
    _check(normalize, gzip.compress(text))


@pytest.mark.parametrize(("name", "normalize", "raw"), SAMPLES, ids=IDS)
@settings(max_examples=60, deadline=None)
@given(cut=st.integers(min_value=0, max_value=10_000), junk=st.binary(max_size=64))
def test_truncated_and_garbage_bytes_raise_only_frame_error(
    name: str, normalize: Normalize, raw: bytes, cut: int, junk: bytes
) -> None:
    _check(normalize, raw[: cut % max(len(raw), 1)])
    _check(normalize, junk)
    _check(normalize, raw + junk)
    _check(normalize, b"\x1f\x8b" + junk)


@pytest.mark.parametrize(("name", "normalize", "raw"), SAMPLES, ids=IDS)
def test_non_json_and_wrong_top_level_types(name: str, normalize: Normalize, raw: bytes) -> None:
    for frame in (b"", b"pong", b"null", b"[]", b"42", b'"x"', b"{", b"\xff\xfe", b"[{}]", b"{}"):
        _check(normalize, frame)
