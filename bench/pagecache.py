"""What a cold read means for the benchmarks: the files out of the OS page cache, not only a
fresh SQLite connection (whose own cache starts empty while the kernel still holds the file).

:func:`load` reads files through (a warm start); :func:`evict` asks the kernel to drop a
file's cached pages (``posix_fadvise(DONTNEED)``, no root needed; dirty pages are written
first, since only clean ones can be dropped); :func:`resident_share` says how much of a file
is cached (``mincore(2)`` over a read-only mapping), so a run can show that its cold read
really started from the disk.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import mmap
import os
from collections.abc import Iterable
from pathlib import Path

_libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
_libc.mmap.restype = ctypes.c_void_p
_libc.mmap.argtypes = [
    ctypes.c_void_p,
    ctypes.c_size_t,
    ctypes.c_int,
    ctypes.c_int,
    ctypes.c_int,
    ctypes.c_long,
]
_libc.mincore.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.POINTER(ctypes.c_ubyte)]
_libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
_MAP_FAILED = ctypes.c_void_p(-1).value


def sqlite_files(db: Path) -> list[Path]:
    """A SQLite database's files that exist: the database, its ``-wal`` and ``-shm``."""
    return [p for p in (db, Path(f"{db}-wal"), Path(f"{db}-shm")) if p.exists()]


def evict(paths: Iterable[Path]) -> None:
    """Drop ``paths``' pages from the OS page cache (pages another process has mapped, such as
    a live connection's ``-shm``, stay)."""
    for path in paths:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fdatasync(fd)
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def load(paths: Iterable[Path]) -> None:
    """Read ``paths`` through once, so the OS page cache holds them (what it can)."""
    for path in paths:
        with path.open("rb") as file:
            while file.read(1 << 20):
                pass


def resident_share(path: Path) -> float:
    """The share of ``path``'s pages in the OS page cache now, 0.0 to 1.0 (0.0 when empty)."""
    size = path.stat().st_size
    if size == 0:
        return 0.0
    pages = (size + mmap.PAGESIZE - 1) // mmap.PAGESIZE
    fd = os.open(path, os.O_RDONLY)
    try:
        address = _libc.mmap(None, size, mmap.PROT_READ, mmap.MAP_SHARED, fd, 0)
        if address in (None, _MAP_FAILED):
            raise OSError(ctypes.get_errno(), f"mmap of {path} failed")
        try:
            vector = (ctypes.c_ubyte * pages)()
            if _libc.mincore(address, size, vector) != 0:
                raise OSError(ctypes.get_errno(), f"mincore over {path} failed")
            return sum(byte & 1 for byte in vector) / pages
        finally:
            _libc.munmap(address, size)
    finally:
        os.close(fd)
