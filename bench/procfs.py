"""What the benchmarks read of another process in /proc: its CPU time so far, and the counts
its status file gives (resident memory now and at its peak, threads).

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


def status(pid: int) -> dict[str, int]:
    """The numeric fields of ``/proc/<pid>/status`` by name, as written: kB for the memory
    ones (``VmRSS``, ``VmHWM``), counts for the others (``Threads``)."""
    found = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, rest = line.partition(":")
        value = rest.split()
        if value and value[0].isdigit():
            found[name] = int(value[0])
    return found


def memory_mb(pid: int, name: str = "VmRSS") -> float:
    """Process ``pid``'s resident memory now (``VmRSS``) or at its peak (``VmHWM``), MB."""
    return status(pid)[name] / 1024


def run_queue_seconds(pid: int) -> float:
    """Seconds the main thread of process ``pid`` (an asyncio server's event loop) has waited
    for a CPU while runnable: the second field of ``/proc/<pid>/schedstat``. What a machine
    shared with other processes costs the loop in time, apart from anything it does itself."""
    return int(Path(f"/proc/{pid}/schedstat").read_text().split()[1]) / 1e9
