"""A SQLite file's writes refused once the file is no longer at its path.

SQLite goes on writing into a file it has open after the file (or its folder) is removed, or
another file is put in its place (in WAL mode it raises nothing: checked with SQLite 3.40):
what it writes then has no name and is lost when the process ends. Every writer of a file the
server keeps (the history store, and the small stores beside it: coverage, webhooks, sampled
accounts, API keys) checks with one :class:`FileGuard` before it writes.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import struct
import sys
from pathlib import Path


class StoreFileGone(OSError):
    """The SQLite file a store has open is no longer at its path: its folder or the file was
    removed, or another file put in its place, while the store ran. Every event, key or
    record written then would vanish when the process ends (and a restart would begin an
    empty history store whose seqs start again at 1), so writes fail with this instead (the
    server holds and retries events; its health says why)."""


def fsync_folder(folder: str | Path) -> None:
    """Make the renames and creations in ``folder`` durable: a file replaced by rename is only
    on disk once its folder is (without this, a power loss can bring back the old file, or
    none)."""
    handle = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(handle)
    finally:
        os.close(handle)


def write_durably(path: Path, data: bytes, *, previous: Path | None = None) -> None:
    """Replace the file at ``path`` with ``data``, atomically and durably: a file beside it,
    fsync, rename, fsync of the folder. A write interrupted at any point leaves the old file
    (or, with ``previous``, the old file moved there: where the file replaced is kept)."""
    partial = path.with_name(path.name + ".partial")
    try:
        with open(partial, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        if previous is not None:
            with contextlib.suppress(FileNotFoundError):
                os.replace(path, previous)
        os.replace(partial, path)
    except BaseException:
        partial.unlink(missing_ok=True)  # a half-written file would hold the space it took
        raise
    fsync_folder(path.parent)


def file_identity(path: str | Path) -> tuple[int, int] | None:
    """The device and inode of the file at ``path``; None when there is none."""
    try:
        found = os.stat(path)
    except FileNotFoundError:
        return None
    return found.st_dev, found.st_ino


#: Linux's ``FS_IOC_GETVERSION`` (``_IOR('v', 1, long)``): an inode's generation number.
_FS_IOC_GETVERSION = 0x80087601


def file_generation(path: str | Path) -> int | None:
    """The generation number of the inode at ``path`` (ext4, XFS, btrfs, tmpfs on Linux); None
    when there is no file or the file system keeps none. Inode numbers are reused: a file
    removed and another written in its place at once (tar extracting over it, ``rm`` then
    ``cp``) mostly gets the same number on ext4, but never the same generation.

    Read through a descriptor this process already holds of the file when there is one (a
    SQLite connection's), never one opened and closed beside it: closing any descriptor of a
    file drops all the process's POSIX locks on it, SQLite's among them, and another process
    closing its connection then took itself for the last one, checkpointed and deleted the
    -wal the server still wrote to (its later events went into a deleted file)."""
    if not sys.platform.startswith("linux"):  # FS_IOC_GETVERSION is Linux's
        return None
    try:
        found = os.stat(path)
    except OSError:
        return None
    inode = (found.st_dev, found.st_ino)
    held = _held_descriptor(inode)
    if held is not None:
        return _generation(held, inode)
    # No descriptor held, so no lock of this process to lose.
    try:
        descriptor = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        return _generation(descriptor, inode)
    finally:
        os.close(descriptor)


def _held_descriptor(inode: tuple[int, int]) -> int | None:
    """A descriptor this process holds of the file ``inode`` (device, inode number), if any."""
    try:
        descriptors = os.listdir("/proc/self/fd")
    except OSError:
        return None
    for name in descriptors:
        try:
            opened = os.fstat(int(name))
        except OSError:
            continue  # closed meanwhile (or the listing's own descriptor)
        if (opened.st_dev, opened.st_ino) == inode:
            return int(name)
    return None


def _generation(descriptor: int, inode: tuple[int, int]) -> int | None:
    """The generation of ``inode`` read through ``descriptor`` (None: not read, or the
    descriptor named another file by the time it was: one held elsewhere may be closed and
    its number reused meanwhile)."""
    try:
        answer = fcntl.ioctl(descriptor, _FS_IOC_GETVERSION, bytes(8))
        after = os.fstat(descriptor)
    except OSError:  # a file system without generations, or the descriptor closed
        return None
    if (after.st_dev, after.st_ino) != inode:
        return None
    # The kernel writes an unsigned 32-bit number (ext4: ``put_user(i_generation, (int *))``).
    return int(struct.unpack("=I", answer[:4])[0])


def _open_copies(path: str) -> list[str]:
    """A descriptor this process holds of each of ``path``'s files since removed (the file,
    its ``-wal``): where a copy of them can still be read (Linux). Every connection holds
    its own; one of each file is named."""
    gone = (f"{path} (deleted)", f"{path}-wal (deleted)")
    found: dict[str, str] = {}
    try:
        descriptors = sorted(os.listdir("/proc/self/fd"), key=int)
    except OSError:
        return []
    for fd in descriptors:
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue  # closed meanwhile
        if target in gone:
            found.setdefault(target, f"/proc/{os.getpid()}/fd/{fd}")
    return [found[target] for target in gone if target in found]


class FileGuard:
    """The file a writer opened at ``path`` (``what`` names it in errors, "SQLite store"):
    :meth:`check` raises :class:`StoreFileGone` once another file, or none, is there. Open
    the connection first, then make the guard: it remembers the file found then."""

    def __init__(self, path: str | Path, what: str) -> None:
        self.path = str(path)
        self.what = what
        #: The file opened; None: nothing to check (``:memory:``, or no file was made).
        self.opened = None if self.path == ":memory:" else file_identity(self.path)

    def check(self) -> None:
        """Raise :class:`StoreFileGone` if the file at the path is not the one opened."""
        if self.opened is None or file_identity(self.path) == self.opened:
            return
        copies = _open_copies(str(Path(self.path).absolute()))
        where = f"; the open copy is still readable at {', '.join(copies)}" if copies else ""
        raise StoreFileGone(
            f"{self.what} {self.path} was removed or replaced while the server ran: "
            f"nothing more is written to it (it would be lost at exit){where}; copy it "
            "(and its -wal) back to that path before stopping the server"
        )
