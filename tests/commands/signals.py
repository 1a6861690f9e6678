"""A command run as a process, to be stopped by a signal at a chosen moment: its output read
by a thread (a blocked read never hangs a test), every wait a condition with a deadline."""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path


class Command:
    """``purpleflea ARGS...`` running, stdout and stderr merged into :attr:`lines`."""

    def __init__(
        self,
        *args: str,
        cwd: Path | None = None,
        start_new_session: bool = False,
        stdin_pipe: bool = False,
        prelude: str = "",
    ) -> None:
        """``prelude``: Python run in the child before the command (a startup step made
        slow, say)."""
        self.args = args
        self.lines: list[str] = []
        self._changed = threading.Condition()
        entry = ["-m", "purpleflea.cli"]
        if prelude:
            run = "import sys\nfrom purpleflea.cli import main\nsys.exit(main(sys.argv[1:]))"
            entry = ["-c", f"{prelude}\n{run}"]
        self.process = subprocess.Popen(
            [sys.executable, *entry, *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.PIPE if stdin_pipe else subprocess.DEVNULL,
            text=True,
            cwd=cwd,
            start_new_session=start_new_session,  # its children then share its group id
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        self.started = time.monotonic()
        self.signalled_at: float | None = None
        #: Seconds of CPU the command had spent when the first signal was sent.
        self.cpu_at_signal: float | None = None
        #: Seconds of CPU from the first signal to the exit (:meth:`exit`): what a stop
        #: costs, whatever the load stretches it to on the wall clock.
        self.cpu_to_stop: float | None = None
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            with self._changed:
                self.lines.append(line)
                self._changed.notify_all()

    @property
    def output(self) -> str:
        with self._changed:
            return "".join(self.lines)

    def wait_for(self, condition: Callable[[], bool], timeout: float, what: str) -> None:
        """Until ``condition()``; fails naming ``what`` and the output so far."""
        deadline = time.monotonic() + timeout
        while not condition():
            if self.process.poll() is not None and not condition():
                raise AssertionError(
                    f"{self.args[0]} exited ({self.process.returncode}) before {what}:\n"
                    + self.output
                )
            if time.monotonic() > deadline:
                self.kill()
                raise AssertionError(
                    f"timed out after {timeout} s waiting for {what}:\n{self.output}"
                )
            with self._changed:
                self._changed.wait(0.05)

    def wait_for_line(self, text: str, timeout: float) -> None:
        self.wait_for(lambda: text in self.output, timeout, repr(text))

    def send(self, signum: int) -> None:
        if self.signalled_at is None:
            self.signalled_at = time.monotonic()
            self.cpu_at_signal = _cpu_of(self.process.pid)
        self.process.send_signal(signum)

    def exit(self, timeout: float) -> tuple[int, float]:
        """The exit status and the seconds from the first signal to the exit; fails (the
        process killed) when it is still running after ``timeout`` seconds."""
        reaped = resource.getrusage(resource.RUSAGE_CHILDREN)
        try:
            status = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(
                f"{self.args[0]} still running {timeout} s after the signal:\n{self.output}"
            ) from None
        took = time.monotonic() - (self.signalled_at or self.started)
        now = resource.getrusage(resource.RUSAGE_CHILDREN)  # this test's one child reaped
        spent = now.ru_utime + now.ru_stime - reaped.ru_utime - reaped.ru_stime
        if self.cpu_at_signal is not None:
            self.cpu_to_stop = spent - self.cpu_at_signal
        self._reader.join(5)
        return status, took

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)


def _cpu_of(pid: int) -> float | None:
    """Seconds of CPU process ``pid`` has spent (user and system; None when unknown)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rpartition(")")[2].split()  # after the name, which may hold spaces
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def assert_stopped(command: Command, status: int, signum: int) -> None:
    """Exited as the rule says (128 + the signal), without a traceback."""
    output = command.output
    assert "Traceback" not in output, output
    assert "KeyboardInterrupt" not in output, output
    assert status == 128 + signum, f"exit status {status}, not {128 + signum}:\n{output}"
    assert signal.Signals(signum).name in output, output
