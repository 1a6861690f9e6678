"""The simulation of a bulk :func:`~purpleflea.sim.history.generate_history` in a child
process, so that it and the parent's SQLite writes each have a core.

In one process they overlap only partly: the simulation holds the GIL for most of its work and
so does the write path's Python (building rows and rollups, binding millions of parameters), so
the two take turns. The child is a fresh interpreter (``python -c`` importing this module), not
a :mod:`multiprocessing` spawn or fork: a spawned child re-imports the caller's ``__main__``,
which breaks an unguarded script or a notebook, and a forked one inherits the parent's threads.

The protocol is pickles over the child's stdin and stdout: the parent writes one
:class:`Request`; the child answers with the simulator's
:class:`~purpleflea.sim.history_columns.Layout`, each batch as the simulation left it
(:class:`~purpleflea.sim.history_columns.Simulated`: arrays, which pickle as bytes; the parent
makes the ids and rows), then its :class:`~purpleflea.sim.history_columns.Totals`, or
:class:`Failed` with its exception and traceback. Only the parent writes the store, so the
store, its transaction and its journal mode are the same as in one process.
"""

from __future__ import annotations

import os
import pickle
import queue
import subprocess
import sys
import threading
import traceback
from collections.abc import Iterator, Mapping
from contextlib import suppress
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING

from purpleflea.sim.history_columns import Chunk, Layout, Simulated, Totals

if TYPE_CHECKING:
    from purpleflea.sim.process import SimConfig

#: glibc's malloc in the child, told to keep the memory it frees (other C libraries ignore
#: the variable). The simulation allocates and frees arrays of 0.5-1.5 MB dozens of times a
#: block (the book's 180,000 slots, a block's 300 x 275 path); by default glibc maps each
#: such array afresh or hands its heap's top back to the kernel, and every reuse then faults
#: in new zeroed pages: 1.6 s of system time in 9 s of CPU for 2 days, which this takes to
#: 0.1-0.3 s (docs/simulator.md, history speed). The heap then stays at its peak (+10 %
#: resident, ~15 MB), released when the child exits.
MALLOC_TUNABLES = "glibc.malloc.mmap_threshold=268435456:glibc.malloc.trim_threshold=1073741824"
#: Chunks the child may have simulated that the parent has not taken yet: enough to smooth
#: uneven batches, few enough that a slow writer holds a few MB of them, not the whole history.
AHEAD = 3


@dataclass(frozen=True, slots=True)
class Request:
    """What the child simulates: ``days`` of ``config`` in chunks of about ``batch`` events,
    seqs from ``first_seq``."""

    config: SimConfig
    days: float
    first_seq: int
    batch: int


@dataclass(frozen=True, slots=True)
class Failed:
    """The child's error: the exception itself when it pickles, and its traceback's text."""

    error: BaseException | None
    text: str


_Message = Layout | Simulated | Totals | Failed


class ChildFailed(RuntimeError):
    """The simulation's process died, or its error could not be sent as itself."""


class _RemoteTraceback(Exception):
    """The child's traceback, chained as the cause of its error raised in the parent."""

    def __str__(self) -> str:
        return str(self.args[0])


def main() -> None:
    """The child: read the request from stdin, answer on stdout."""
    # The pipe is the protocol: anything printed goes to stderr instead.
    out = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    try:
        for message in _simulate(pickle.load(sys.stdin.buffer)):
            pickle.dump(message, out, protocol=pickle.HIGHEST_PROTOCOL)
    except BaseException as error:  # Ctrl-C too: the parent is told why
        failed = Failed(error, traceback.format_exc())
        try:
            data = pickle.dumps(failed, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception:  # an exception that does not pickle: its text then
            data = pickle.dumps(Failed(None, failed.text), protocol=pickle.HIGHEST_PROTOCOL)
        # A parent that stopped reading (it failed or was interrupted) needs no answer.
        with suppress(BrokenPipeError):
            out.write(data)
    with suppress(BrokenPipeError):
        out.close()


def _simulate(request: Request) -> Iterator[Layout | Simulated | Totals]:
    from purpleflea.sim.history import Producer  # noqa: PLC0415 (history imports this module)
    from purpleflea.sim.process import Simulator  # noqa: PLC0415

    sim = Simulator(request.config)
    producer = Producer(sim, request.days, request.first_seq, None, request.batch, columns=True)
    yield producer.layout
    while (simulated := producer.simulate()) is not None:
        yield simulated
    yield producer.totals()


def child_environment(parent: Mapping[str, str]) -> dict[str, str]:
    """The child's environment: the parent's, with :data:`MALLOC_TUNABLES` before any glibc
    tunables the parent sets (so the parent's own settings win where they overlap)."""
    env = dict(parent)
    env["GLIBC_TUNABLES"] = ":".join(filter(None, (MALLOC_TUNABLES, parent.get("GLIBC_TUNABLES"))))
    return env


class ChildProducer:
    """The parent's end: starts the child and reads its chunks ahead on a thread.

    :meth:`next_chunk` is the in-process producer's: the next chunk, ``None`` once the
    simulation is over (then :meth:`totals` gives its totals), or the child's error raised as
    itself (its traceback chained as the cause); a child that dies without a word raises
    :class:`ChildFailed` with its exit code. :meth:`close` kills a child still running.
    """

    def __init__(self, request: Request) -> None:
        self._totals: Totals | None = None
        self._layout: Layout | None = None
        self._queue: queue.Queue[_Message] = queue.Queue(AHEAD)
        self._closing = threading.Event()
        # The parent's import path, as a spawned process gets it: the child imports this
        # very package even when the caller put it on sys.path itself.
        start = f"import sys; sys.path[:] = {sys.path!r}; from {__name__} import main; main()"
        self._process = subprocess.Popen(
            [sys.executable, "-P", "-c", start],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=child_environment(os.environ),
        )
        stdin, stdout = self._process.stdin, self._process.stdout
        assert stdin is not None  # asked for
        assert stdout is not None
        # A child that died at once says so on its stdout.
        with suppress(BrokenPipeError), stdin:
            pickle.dump(request, stdin, protocol=pickle.HIGHEST_PROTOCOL)
        self._reader = threading.Thread(
            target=self._read, args=(stdout,), name="sim-history-child", daemon=True
        )
        self._reader.start()

    @property
    def pid(self) -> int:
        return self._process.pid

    def next_chunk(self) -> Chunk | None:
        message = self._next()
        while isinstance(message, Layout):  # the child sends it first
            self._layout = message
            message = self._next()
        if isinstance(message, Failed):
            self._queue.put(message)  # a second call fails the same way
            if message.error is None:
                raise ChildFailed(message.text)
            raise message.error from _RemoteTraceback(message.text)
        if isinstance(message, Totals):
            self._totals = message
            return None
        assert self._layout is not None
        # The Python objects are made here: the child's core is the simulation's.
        return self._layout.columns(message)

    def _next(self) -> _Message:
        """The next message; a Failed once :meth:`close` began with none queued. A close cut
        short (a second SIGTERM, as ``timeout`` sends one to the command and one to its group,
        raises KeyboardInterrupt in it) queued none, and the pool's exit waited for good on
        this thread."""
        while True:
            try:
                return self._queue.get(timeout=0.1)
            except queue.Empty:
                if self._closing.is_set():
                    return Failed(None, "the history simulation was stopped")

    def totals(self) -> Totals:
        """The simulation's totals, once :meth:`next_chunk` has returned ``None``."""
        if self._totals is None:
            raise RuntimeError("the history simulation has not finished")
        return self._totals

    def close(self) -> None:
        """Stop the child if it still runs; a :meth:`next_chunk` waiting then fails."""
        self._closing.set()
        if self._process.poll() is None:
            self._process.kill()
        self._process.wait()
        self._reader.join()
        while True:
            try:
                self._queue.get_nowait()
            except queue.Empty:
                break
        self._queue.put(Failed(None, "the history simulation was stopped"))

    def _read(self, stdout: IO[bytes]) -> None:
        with stdout:
            while True:
                try:
                    message: _Message = pickle.load(stdout)
                except Exception:  # EOF, or a message cut short: the child died
                    code = self._process.wait()
                    message = Failed(
                        None,
                        f"the history simulation's process (pid {self._process.pid}) "
                        f"exited with code {code} before it finished",
                    )
                if not self._put(message) or isinstance(message, Totals | Failed):
                    return

    def _put(self, message: _Message) -> bool:
        """Queue ``message`` once there is room; False if the parent is closing instead."""
        while not self._closing.is_set():
            try:
                self._queue.put(message, timeout=0.1)
            except queue.Full:
                continue
            return True
        return False
