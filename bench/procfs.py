"""What the benchmarks read of another process in /proc: its CPU time so far.

The bench scripts measure a server they started (or were given the pid of) from outside:
user + system seconds, robust on a shared machine where wall time says little.
"""

from __future__ import annotations

import os
from pathlib import Path

_TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds process ``pid`` has used so far (its threads included)."""
    # The name in parentheses may hold spaces or ")": the fields follow the last one.
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICK  # utime, stime
