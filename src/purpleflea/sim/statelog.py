"""The change log kept beside a saved simulator state: how its records are framed on disk.

A log is :data:`MAGIC`, a header frame naming the full state it continues (its ``token``),
then one frame per save. A frame is its payload's length and CRC-32 (little-endian u32 each)
followed by the payload. A reader stops at the first frame that is cut short or whose CRC does
not match (a process killed while appending), so it applies whole records only: what it
rebuilds is always the state of one save, the last that was written in full.

A payload (:func:`encode`) is a JSON document (scalars, and each array's name, dtype and
shape) and the arrays' bytes after it, in that order. What the records hold is
:mod:`purpleflea.sim.resume`'s business; this module only frames them.
"""

from __future__ import annotations

import json
import struct
import zlib
from collections.abc import Iterator
from typing import Any

import numpy as np
import numpy.typing as npt

MAGIC = b"purpleflea sim state log 1\n"
_FRAME = struct.Struct("<II")
_LENGTH = struct.Struct("<I")


def frame(payload: bytes) -> bytes:
    """``payload`` with its length and CRC-32 in front."""
    return _FRAME.pack(len(payload), zlib.crc32(payload)) + payload


def start(token: str) -> bytes:
    """The beginning of a log that continues the full state saved with ``token``."""
    return MAGIC + frame(json.dumps({"token": token}).encode())


def records(data: bytes, token: str) -> Iterator[bytes]:
    """The payloads of the whole records in ``data`` (a log's bytes), in order; nothing when
    the log continues another full state than ``token``'s (a new full state was written and
    the process stopped before it replaced the log) or is not a log at all."""
    if not data.startswith(MAGIC):
        return
    frames = _frames(data, len(MAGIC))
    head = next(frames, None)
    if head is None:
        return
    try:
        if json.loads(head).get("token") != token:
            return
    except (ValueError, AttributeError):
        return
    yield from frames


def _frames(data: bytes, at: int) -> Iterator[bytes]:
    while at + _FRAME.size <= len(data):
        length, crc = _FRAME.unpack_from(data, at)
        body = data[at + _FRAME.size : at + _FRAME.size + length]
        if len(body) < length or zlib.crc32(body) != crc:
            return  # cut short by a kill mid-append: what follows was never a whole record
        yield body
        at += _FRAME.size + length


def encode(scalars: dict[str, Any], arrays: dict[str, npt.NDArray[Any]]) -> bytes:
    """One payload: ``scalars`` (JSON values) and ``arrays`` (numeric, any shape)."""
    layout = [[name, array.dtype.str, list(array.shape)] for name, array in arrays.items()]
    head = json.dumps({"scalars": scalars, "arrays": layout}).encode()
    parts = [_LENGTH.pack(len(head)), head]
    parts += [np.ascontiguousarray(array).tobytes() for array in arrays.values()]
    return b"".join(parts)


def decode(payload: bytes) -> tuple[dict[str, Any], dict[str, npt.NDArray[Any]]]:
    """The scalars and arrays :func:`encode` put in ``payload`` (the arrays are copies).

    Raises ValueError when ``payload`` is not such a record."""
    try:
        (size,) = _LENGTH.unpack_from(payload, 0)
        head = json.loads(payload[_LENGTH.size : _LENGTH.size + size])
        at = _LENGTH.size + size
        arrays: dict[str, npt.NDArray[Any]] = {}
        for name, dtype, shape in head["arrays"]:
            kind = np.dtype(dtype)
            count = int(np.prod(shape, dtype=np.int64))
            if kind.hasobject or at + count * kind.itemsize > len(payload):
                raise ValueError(f"array {name!r} does not fit the record")
            flat = np.frombuffer(payload, dtype=kind, count=count, offset=at)
            arrays[str(name)] = flat.reshape(shape).copy()
            at += count * kind.itemsize
        scalars = head["scalars"]
        if not isinstance(scalars, dict):
            raise ValueError("no scalars")
    except (struct.error, KeyError, TypeError) as exc:
        raise ValueError(f"not a state record ({exc!r})") from exc
    return scalars, arrays
