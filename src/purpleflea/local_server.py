"""Where the local tracker listens: ``<data_dir>/server.json``, written by ``purpleflea serve``.

A server started on another port (``serve --port 8123``) records its address in its data
folder, so ``purpleflea tail`` run from the same working directory finds it without ``--url``.
The file names the server's process: a server killed with ``kill -9`` cannot remove it, and a
record whose process is gone is ignored rather than trusted.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path

FILE_NAME = "server.json"


def client_url(host: str, port: int) -> str:
    """The URL a client on this machine uses for a server bound to ``host``: a wildcard
    address (all interfaces) is reached over loopback."""
    if host in ("", "0.0.0.0"):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}"


def _alive(pid: int) -> bool:
    """Whether process ``pid`` runs. A record's pid is only a number from a file: 0 or a
    negative one would probe a process group (0: our own, always "alive"), and one past the
    C int made ``os.kill`` raise OverflowError; none of them is a server's process."""
    if isinstance(pid, bool) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, OverflowError):
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def _read(path: Path) -> tuple[str, int, str | None] | None:
    """``(url, pid, keys)`` from an address file, or None when it is missing or not ours."""
    try:
        record = json.loads(path.read_text())
        url, pid, keys = record["url"], record["pid"], record.get("keys")
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    if not isinstance(url, str) or not isinstance(pid, int) or not isinstance(keys, str | None):
        return None
    return url, pid, keys


def record_address(data_dir: Path, url: str, *, keys: str | None = None) -> Path | None:
    """Record that this process serves ``url`` for ``data_dir``, and ``keys``, the PostgreSQL
    store its API keys live in (password masked) when they are not the folder's key file;
    returns the file, or None when another live server already recorded itself there (it
    keeps its record)."""
    path = data_dir / FILE_NAME
    current = _read(path)
    if current is not None and current[1] != os.getpid() and _alive(current[1]):
        return None
    data_dir.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{FILE_NAME}.{os.getpid()}")
    record: dict[str, object] = {"url": url, "pid": os.getpid()}
    if keys is not None:
        record["keys"] = keys
    temporary.write_text(json.dumps(record) + "\n")
    temporary.replace(path)  # readers never see half a file
    return path


def remove_address(path: Path) -> None:
    """Remove the record at ``path`` if it is still this process's."""
    current = _read(path)
    if current is not None and current[1] == os.getpid():
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def find_address(data_dir: Path) -> str | None:
    """The URL of the server running on ``data_dir``, or None (no record, or its server
    is gone)."""
    current = _read(data_dir / FILE_NAME)
    if current is None or not _alive(current[1]):
        return None
    return current[0]


def postgres_keys(data_dir: Path) -> tuple[str, str] | None:
    """``(url, store)`` when the server running on ``data_dir`` keeps its API keys in the
    PostgreSQL ``store`` (password masked), not in the folder's key file; else None."""
    current = _read(data_dir / FILE_NAME)
    if current is None or current[2] is None or not _alive(current[1]):
        return None
    return current[0], current[2]
