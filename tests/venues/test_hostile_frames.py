"""Frames no venue should send, as venues' gateways still do: every reader the connection
runner calls on a frame (the normalizer, and the venue's ping, refusal, closing and subscribe
readers) answers them as documented: the normalizer with events or :class:`FrameError`, the
others with a reply or None. An exception of any other type reaches the runner as a "bug":
a traceback in the log for every such frame, and the wrong counter."""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Callable

import pytest

from purpleflea.ingest import feeds
from purpleflea.ingest.feed_spec import FeedSpec
from purpleflea.venues import FrameError
from tests.fakes.harness import catalogs_for_tests

_GOOD_GZIP = gzip.compress(b'{"op":"notify","topic":"public.BTC-USDT.liquidation_orders"}')

HOSTILE: dict[str, str | bytes] = {
    "invalid_utf8": b"\xff\xfe\xfd{",
    "binary_json": b'{"op":"ping","ts":1}',
    "corrupt_gzip": _GOOD_GZIP[:20] + b"\x00" * 10 + _GOOD_GZIP[30:],
    "truncated_gzip": _GOOD_GZIP[: len(_GOOD_GZIP) // 2],
    "gzip_magic_only": b"\x1f\x8b",
    "corrupt_deflate": zlib.compress(b'{"event":"error"}')[:-3],
    "nested_arrays": "[" * 100_000,
    "nested_objects": '{"a":' * 100_000,
    "nested_gzip": gzip.compress(b'{"a":' * 100_000),
    "empty_text": "",
    "empty_binary": b"",
    "null": "null",
    "huge_number": "1e999",
    "lone_surrogate": '{"event":"\\ud800"}',
}

SPECS = feeds.build_feeds(catalogs_for_tests(), feeds.available())


def readers(spec: FeedSpec) -> dict[str, Callable[[bytes | str], object]]:
    found: dict[str, Callable[[bytes | str], object] | None] = {
        "answer": spec.answer,
        "refusal": spec.refusal,
        "closing": spec.closing,
        "subscribed": spec.subscribed,
        "reply": spec.batching.reply if spec.batching is not None else None,
    }
    return {name: read for name, read in found.items() if read is not None}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_every_normalizer_rejects_a_hostile_frame_as_a_frame_error(name: str) -> None:
    wrong = []
    for spec in SPECS:
        try:
            spec.normalize(HOSTILE[name])
        except FrameError:
            pass
        except Exception as exc:
            wrong.append(f"{spec.name}: {exc!r:.120}")
    assert wrong == []


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_every_frame_reader_reads_a_hostile_frame_as_none_of_its_own(name: str) -> None:
    wrong = []
    for spec in SPECS:
        for reader, read in readers(spec).items():
            try:
                read(HOSTILE[name])
            except FrameError:
                pass
            except Exception as exc:
                wrong.append(f"{spec.name}.{reader}: {exc!r:.120}")
    assert wrong == []
