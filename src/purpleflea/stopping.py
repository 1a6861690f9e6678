"""Ctrl-C (SIGINT) and SIGTERM: one rule for every command.

A command stopped by a signal says so in one line on stderr and exits with 128 + the signal's
number, the shell's convention: 130 for SIGINT, 143 for SIGTERM. SIGTERM is handled as Ctrl-C
is, so what a command cleans up on Ctrl-C (a transaction
rolled back, a child process stopped) it cleans up on SIGTERM too
(:func:`signals_as_interrupts`).

``purpleflea serve`` handles both itself for its whole run (:class:`ServeStop`): its startup
takes seconds, and a signal read in it used to be lost or end in a traceback.
"""

from __future__ import annotations

import _thread
import asyncio
import contextlib
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from types import FrameType
from typing import Any, Protocol, TypeVar

T = TypeVar("T")


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
#: How long a dropped Ctrl-C waits before it is sent again: time for the main thread to
#: leave the code that dropped it (a gc callback takes microseconds).
_AGAIN_AFTER_S = 0.01

#: A repeat of the first stop signal within this many seconds is that request again, not a
#: second one ("stop at once"): ``timeout`` sends its SIGTERM to the command and then to the
#: command's process group, the command included, microseconds apart.
_SAME_REQUEST_S = 0.2

#: The signal that :func:`terminate_as_interrupt` turned into an interrupt, if any.
_received: list[int] = []


class _Requests:
    """The stop signals one run received, each repeat of the first within
    :data:`_SAME_REQUEST_S` left out."""

    def __init__(self) -> None:
        self.signals: list[int] = []
        self._first_at = 0.0

    def add(self, signum: int) -> bool:
        """Count ``signum``; False when it only repeats the first request."""
        now = time.monotonic()
        if self.signals and signum == self.signals[0] and now - self._first_at < _SAME_REQUEST_S:
            return False
        if not self.signals:
            self._first_at = now
        self.signals.append(signum)
        return True


def exit_status(signum: int) -> int:
    """The exit status of a command stopped by ``signum``: 128 + its number."""
    return 128 + signum


def signal_name(signum: int) -> str:
    return signal.Signals(signum).name


@contextlib.contextmanager
def signals_as_interrupts() -> Iterator[None]:
    """While in the block (on the main thread; elsewhere it does nothing): SIGTERM does what
    SIGINT does at that moment (KeyboardInterrupt in plain code, the main task cancelled
    under ``asyncio.run``) and is remembered for :func:`interrupted_by`, so a command cleans
    up on SIGTERM what it cleans up on Ctrl-C (a repeat within :data:`_SAME_REQUEST_S` is
    that request again: not raised in the cleanup); and a KeyboardInterrupt Python could only drop
    is sent again (:func:`_interrupt_again`). The previous handlers come back after it."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    _received.clear()
    requests = _Requests()

    def forward(signum: int, frame: FrameType | None) -> None:
        if not requests.add(signum):
            return  # timeout(1)'s SIGTERM again, to the process group: the same request
        _received.append(signum)
        handler = signal.getsignal(signal.SIGINT)
        if callable(handler):
            handler(signal.SIGINT, frame)
        else:  # SIGINT ignored or at its default: interrupt anyway
            raise KeyboardInterrupt

    previous_term = signal.signal(signal.SIGTERM, forward)
    previous_hook = sys.unraisablehook

    def hook(unraisable: sys.UnraisableHookArgs) -> None:
        if isinstance(unraisable.exc_value, KeyboardInterrupt):
            try:
                _interrupt_again()
            except KeyboardInterrupt:  # another Ctrl-C read right here: it is sent too
                _interrupt_again()
            return
        previous_hook(unraisable)

    sys.unraisablehook = hook
    try:
        yield
    finally:
        sys.unraisablehook = previous_hook
        signal.signal(signal.SIGTERM, previous_term)


@contextlib.contextmanager
def interrupting_in_place() -> Iterator[None]:
    """While in the block (main thread): Ctrl-C raises KeyboardInterrupt where the code is,
    also under ``asyncio.run``, whose own handler only cancels its main task: a command whose
    coroutine does its work without yielding to the loop (``import``: the files parsed, the
    batches written, all synchronous) never saw that cancel until the work was done (16-35 s
    at load 9, every event imported, then "stopped")."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGINT, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


@contextlib.contextmanager
def ending_at_once(command: str) -> Iterator[None]:
    """While in the block (main thread): SIGINT or SIGTERM ends the process at once, with the
    one line and 128 + the signal, for a command that keeps nothing and waits where no
    cancel reaches (``mcp``: its read of stdin runs on a thread that only a line or the end
    of stdin frees, and the interrupted command waited for it forever)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def end(signum: int, frame: FrameType | None) -> None:
        _write_line(f"purpleflea {command}: stopped by {signal_name(signum)}")
        with contextlib.suppress(Exception):  # the main thread may be mid-write
            sys.stdout.flush()
        os._exit(exit_status(signum))

    previous = {signum: signal.signal(signum, end) for signum in STOP_SIGNALS}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _interrupt_again() -> None:
    """SIGINT to the main thread once more, from a thread of its own.

    The handler of SIGINT raises in whatever Python code runs when the signal is read, and
    that may be a garbage collector callback (``cputime``'s runs at every pass), a ``__del__``
    or a weakref callback, where an exception is "ignored": such a Ctrl-C was lost, with a
    traceback, and the command ran on (``serve`` interrupted in its startup served on until a
    second Ctrl-C). A bare thread (``threading.Thread.start`` waits for the thread, and the
    signal could land in that wait, inside the hook, where it is lost for good) sends it once
    the main thread had time to leave that code; lost again, it is sent again."""
    main = threading.main_thread().ident
    assert main is not None  # the main thread has started
    _thread.start_new_thread(_send_interrupt, (main,))


def _send_interrupt(main: int) -> None:
    time.sleep(_AGAIN_AFTER_S)
    signal.pthread_kill(main, signal.SIGINT)


def run_stoppable(main: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run(main)`` where SIGINT or SIGTERM cancels ``main`` from the loop, between
    two of its callbacks, and then raises KeyboardInterrupt (:func:`interrupted_by` names the
    signal); a second signal raises it at once.

    asyncio's own handler cancels the main task inside whatever code runs when the signal is
    read, and that may be the loop completing the future the task waits on: the future,
    cancelled under its hand between its check and its ``set_result``, logged an
    ``InvalidStateError`` traceback (``sim --days`` stopped while a batch came back from its
    worker thread, once in a CI run)."""
    import asyncio  # noqa: PLC0415 - the commands' entry imports this module before main()

    return asyncio.run(_stoppable(main))


async def _stoppable(main: Coroutine[Any, Any, T]) -> T:
    import asyncio  # noqa: PLC0415 - see run_stoppable

    task = asyncio.current_task()
    if task is None or threading.current_thread() is not threading.main_thread():
        return await main
    loop = asyncio.get_running_loop()
    received = _Requests()
    _received.clear()

    def handle(signum: int, frame: FrameType | None) -> None:
        if not received.add(signum):
            return
        _received.append(signum)
        if len(received.signals) > 1:
            raise KeyboardInterrupt
        loop.call_soon_threadsafe(task.cancel)

    previous = {signum: signal.getsignal(signum) for signum in STOP_SIGNALS}
    for signum in STOP_SIGNALS:
        signal.signal(signum, handle)
    try:
        result = await main
    except asyncio.CancelledError:
        if received.signals and task.uncancel() == 0:
            raise KeyboardInterrupt from None
        raise
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler if handler is not None else signal.SIG_DFL)
    if received.signals:  # read as the work ended: the command was still stopped by it
        raise KeyboardInterrupt
    return result


def interrupted_by() -> int:
    """The signal behind a KeyboardInterrupt: SIGTERM if one was forwarded, else SIGINT."""
    return _received[0] if _received else signal.SIGINT


def say_stopped(command: str | None, signum: int) -> None:
    """The one line of a command stopped by ``signum`` (``None``: before its name was read)."""
    who = f"purpleflea {command}" if command else "purpleflea"
    print(f"{who}: stopped by {signal_name(signum)}", file=sys.stderr, flush=True)


class _Exiting(Protocol):
    should_exit: bool


class ServeStop:
    """The signals of one ``purpleflea serve`` run, from before its first import of the server
    to its exit: the first SIGINT or SIGTERM starts the graceful stop (before the server runs:
    it is not started, or started only to stop at once), a second one stops the process at
    once (what the graceful stop would still write is lost, as after a kill)."""

    def __init__(self) -> None:
        self._requests = _Requests()
        self.signals = self._requests.signals
        #: The uvicorn server, once it runs: the stop is its ``should_exit``.
        self.server: _Exiting | None = None
        #: Cancelled by the first signal while set: a wait that may be long (a standby
        #: ingest node waits for the sequencer lock before the server exists; the app's
        #: startup, the store warmed and the venues started, before uvicorn reads its stop).
        self.waiting: asyncio.Task[Any] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._previous: dict[int, Callable[[int, FrameType | None], object] | int | None] = {}

    def install(self) -> None:
        for signum in STOP_SIGNALS:
            self._previous[signum] = signal.getsignal(signum)
            signal.signal(signum, self._handle)

    def restore(self) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler if handler is not None else signal.SIG_DFL)
        self._previous.clear()

    @property
    def requested(self) -> bool:
        return bool(self.signals)

    def exit_status(self) -> int:
        """0 when no signal came, else 128 + the first signal."""
        return exit_status(self.signals[0]) if self.signals else 0

    def cancel_while_waiting(self, task: asyncio.Task[Any]) -> None:
        """Let the first signal cancel ``task`` until :meth:`done_waiting` (on the loop); one
        read already, since the caller last looked at :attr:`requested`, cancels it now."""
        self._loop = task.get_loop()
        self.waiting = task
        if self.signals:  # nothing was waiting when it came
            task.cancel()

    def done_waiting(self) -> None:
        self.waiting = None

    def adopt(self, server: _Exiting) -> None:
        """The server now runs: a signal read before is its stop too."""
        self.server = server
        if self.signals:
            server.should_exit = True

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if not self._requests.add(signum):
            return
        name = signal_name(signum)
        if len(self.signals) > 1:
            _write_line(f"purpleflea serve: {name} again, stopping at once")
            with contextlib.suppress(Exception):  # the main thread may be mid-write
                sys.stdout.flush()
            os._exit(exit_status(signum))
        _write_line(f"purpleflea serve: {name} received, stopping (Ctrl-C again: stop at once)")
        if self.server is not None:
            self.server.should_exit = True
        # Also once the server runs: its app's startup is such a wait (uvicorn reads
        # should_exit only after it).
        if self.waiting is not None and self._loop is not None:
            self._loop.call_soon_threadsafe(self._cancel_waiting)

    def _cancel_waiting(self) -> None:
        # Here, on the loop: the handler ran between two bytecodes of whatever was running.
        if self.waiting is not None:
            self.waiting.cancel()


def _write_line(line: str) -> None:
    """One line on stderr from a signal handler: straight to the descriptor (``print`` may
    find the main thread mid-write to the same stream and raise)."""
    with contextlib.suppress(OSError):
        os.write(sys.stderr.fileno(), f"{line}\n".encode())
