"""One writer per data folder: the server and the bulk loaders (sim, import) exclude each other.

Both assign ``seq`` from the store's last value; two writers at once would hand out the same
seq twice. :func:`exclusive` takes an advisory ``flock`` on ``<data_dir>/.writer.lock`` that
the OS releases when the process dies (kill -9 included), so a crash never leaves it stuck.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


class DataDirBusy(RuntimeError):
    """Another process (a running server, an import) is writing to this data folder."""


@contextmanager
def exclusive(data_dir: Path, what: str) -> Iterator[None]:
    """Hold the data folder's writer lock for ``what`` (named in the other side's error)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / ".writer.lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 200, 0).decode(errors="replace").strip() or "another process"
            raise DataDirBusy(
                f"{data_dir} is in use by {holder}; stop it first (one writer per data folder)"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{what} (pid {os.getpid()})".encode(), 0)
        yield
    finally:
        os.close(fd)
