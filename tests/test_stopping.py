"""The one rule for signals (purpleflea/stopping.py), shown in a child interpreter so that
the test process's own handlers stay as they are."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import textwrap

import pytest

from purpleflea.stopping import ServeStop

# A Ctrl-C read inside a garbage collector callback: Python can only print such an exception
# and drop it ("Exception ignored in: <function _on_collection ...>"), which is how
# `purpleflea serve` lost the Ctrl-C of its startup (cputime's callback runs at every pass).
_LOST_IN_GC = textwrap.dedent(
    """
    import gc, os, signal, time
    from purpleflea.stopping import signals_as_interrupts

    sent = []

    def callback(phase, info):
        if phase == "start" and not sent:
            sent.append(True)
            os.kill(os.getpid(), signal.SIGINT)
            for _ in range(10_000):  # the handler runs here, in the callback
                pass

    try:
        with signals_as_interrupts():
            gc.callbacks.append(callback)
            gc.collect()
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                time.sleep(0.01)
        print("ran on")
    except KeyboardInterrupt:
        print("interrupted")
    """
)


def test_a_ctrl_c_dropped_in_a_gc_callback_is_sent_again() -> None:
    done = subprocess.run(
        [sys.executable, "-c", _LOST_IN_GC], check=False, capture_output=True, text=True, timeout=60
    )
    assert done.stdout.strip() == "interrupted", done.stdout + done.stderr
    assert "Exception ignored" not in done.stderr, done.stderr


def test_sigterm_is_handled_as_ctrl_c_and_named() -> None:
    script = textwrap.dedent(
        """
        import os, signal, time
        from purpleflea.stopping import interrupted_by, signals_as_interrupts
        try:
            with signals_as_interrupts():
                os.kill(os.getpid(), signal.SIGTERM)
                time.sleep(10)
        except KeyboardInterrupt:
            print(signal.Signals(interrupted_by()).name)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], check=False, capture_output=True, text=True, timeout=60
    )
    assert done.stdout.strip() == "SIGTERM", done.stdout + done.stderr


# What the `purpleflea` console script runs (pip's wrapper), with a Ctrl-C sent the moment
# msgspec (the event model's codec, which every command needs) is first imported.
_CTRL_C_WHILE_IMPORTING = textwrap.dedent(
    """
    import importlib.abc, os, signal, sys

    class CtrlC(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name == "msgspec":
                sys.meta_path.remove(self)
                os.kill(os.getpid(), signal.SIGINT)
            return None

    sys.meta_path.insert(0, CtrlC())
    sys.argv = ["purpleflea", "-v", "history", "--help"]
    from purpleflea.cli import main
    sys.exit(main())
    """
)


def test_a_ctrl_c_while_the_command_s_modules_are_imported_says_so_in_one_line() -> None:
    # The package's import (the SDK: httpx, msgspec, websockets; 0.2-0.5 s under load) ran
    # before the command's handlers: a Ctrl-C then printed a KeyboardInterrupt traceback.
    done = subprocess.run(
        [sys.executable, "-c", _CTRL_C_WHILE_IMPORTING],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (done.returncode, done.stderr, done.stdout) == (
        130,
        "purpleflea history: stopped by SIGINT\n",
        "",
    )


def test_the_command_s_entry_imports_no_sdk_before_its_handlers() -> None:
    # What `from purpleflea.cli import main` runs before main() can catch a Ctrl-C: the
    # SDK's modules are imported when a name of it is first used, not with the package.
    script = textwrap.dedent(
        """
        import json, sys
        from purpleflea.cli import main
        before = sorted(m for m in sys.modules if m.split(".")[0] in ("purpleflea", "httpx",
                                                                     "msgspec", "numpy"))
        import purpleflea
        client = purpleflea.LiquidationClient  # the SDK's names, verbatim
        print(json.dumps([before, client.__module__, "purpleflea.client" in sys.modules]))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], check=False, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    before, module, loaded = json.loads(done.stdout)
    assert before == ["purpleflea", "purpleflea.cli", "purpleflea.stopping"]
    assert (module, loaded) == ("purpleflea.client.aio", True)


# A signal read while the loop completes the future the main task waits on (what `sim --days`
# does each time a batch comes back from its worker thread): the handler runs right after
# os.kill, inside the callback, between its check of the future and its set_result.
_SIGNAL_WHILE_A_FUTURE_COMPLETES = textwrap.dedent(
    """
    import asyncio, os, signal, sys
    from purpleflea.stopping import interrupted_by, run_stoppable

    signal.signal(signal.SIGINT, signal.default_int_handler)
    errors = []

    async def main():
        loop = asyncio.get_running_loop()
        loop.set_exception_handler(lambda loop, context: errors.append(context["message"]))
        waited = loop.create_future()

        def complete():
            if not waited.cancelled():
                os.kill(os.getpid(), signal.SIGNUM)
                waited.set_result("batch")

        loop.call_soon(complete)
        await waited
        await asyncio.sleep(10)

    try:
        {run}(main())
        print("ran on")
    except KeyboardInterrupt:
        print("interrupted", signal.Signals(interrupted_by()).name, errors)
    """
)


@pytest.mark.parametrize("signum", ["SIGINT", "SIGTERM"])
def test_a_signal_read_while_a_future_completes_stops_the_command_without_a_traceback(
    signum: str,
) -> None:
    script = _SIGNAL_WHILE_A_FUTURE_COMPLETES.replace("SIGNUM", signum).replace(
        "{run}", "run_stoppable"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], check=False, capture_output=True, text=True, timeout=60
    )
    assert done.stdout.strip() == f"interrupted {signum} []", done.stdout + done.stderr
    assert "Traceback" not in done.stderr, done.stderr


# `timeout N purpleflea ...` sends its SIGTERM to the command and then to the command's process
# group, which holds the command: two SIGTERMs microseconds apart. The second was taken as an
# impatient second Ctrl-C: `serve` stopped at once (its state unsaved), other commands raised
# in the middle of their cleanup (`sim` then waited for good on a worker thread).
_TWICE_AT_ONCE = textwrap.dedent(
    """
    import asyncio, os, signal, time
    from purpleflea.stopping import ServeStop, interrupted_by, run_stoppable

    if "{which}" == "serve":
        stop = ServeStop()
        stop.install()
        os.kill(os.getpid(), signal.SIGTERM)
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(0.3)
        print("graceful", stop.signals[:1], stop.exit_status())
    else:
        async def main():
            try:
                os.kill(os.getpid(), signal.SIGTERM)
                os.kill(os.getpid(), signal.SIGTERM)
                await asyncio.sleep(10)
            except asyncio.CancelledError:
                time.sleep(0.3)  # the command's cleanup, in plain code
                print("cleaned up")
                raise

        try:
            run_stoppable(main())
        except KeyboardInterrupt:
            print("interrupted", signal.Signals(interrupted_by()).name)
    """
)


@pytest.mark.parametrize("which", ["serve", "command"])
def test_a_signal_sent_twice_at_once_is_one_request_to_stop(which: str) -> None:
    script = _TWICE_AT_ONCE.replace("{which}", which)
    done = subprocess.run(
        [sys.executable, "-c", script], check=False, capture_output=True, text=True, timeout=60
    )
    expected = "graceful [15] 143" if which == "serve" else "cleaned up\ninterrupted SIGTERM"
    assert (done.returncode, done.stdout.strip()) == (0, expected), done.stdout + done.stderr
    assert "Traceback" not in done.stderr, done.stderr


def test_a_second_signal_a_moment_later_still_stops_at_once() -> None:
    # An impatient second Ctrl-C is still honoured: only a repeat within the same instant is
    # taken as the first one again.
    script = textwrap.dedent(
        """
        import os, signal, time
        from purpleflea.stopping import ServeStop

        stop = ServeStop()
        stop.install()
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.5)
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(5)
        print("ran on")
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], check=False, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 130, done.stdout + done.stderr
    assert "SIGINT again, stopping at once" in done.stderr


def test_a_sigterm_sent_twice_at_once_outside_the_loop_is_one_request_to_stop() -> None:
    # Before a command's loop runs (its modules imported, its flags read) and in `import`,
    # whose work is plain code, SIGTERM raises KeyboardInterrupt where the code is
    # (signals_as_interrupts). timeout(1)'s second SIGTERM, to the process group, then raised
    # another one inside the cleanup of the first (a rollback, a spool file's removal).
    script = textwrap.dedent(
        """
        import os, signal, time
        from purpleflea.stopping import (
            interrupted_by, interrupting_in_place, signals_as_interrupts,
        )

        try:
            with signals_as_interrupts(), interrupting_in_place():
                try:
                    os.kill(os.getpid(), signal.SIGTERM)  # raises here
                    time.sleep(10)
                finally:
                    # timeout(1)'s second, to the process group, read in the cleanup
                    os.kill(os.getpid(), signal.SIGTERM)
                    time.sleep(0.3)  # the command's cleanup, in plain code
                    print("cleaned up")
        except KeyboardInterrupt:
            print("interrupted", signal.Signals(interrupted_by()).name)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], check=False, capture_output=True, text=True, timeout=60
    )
    expected = "cleaned up\ninterrupted SIGTERM"
    assert (done.returncode, done.stdout.strip()) == (0, expected), done.stdout + done.stderr
    assert "Traceback" not in done.stderr, done.stderr


async def test_a_signal_read_as_a_wait_is_handed_over_cancels_that_wait() -> None:
    # serve checks for a stop, then starts opening the server (a standby waits there for the
    # sequencer lock) and hands that wait over: a signal read between the two found nothing
    # to cancel, and the standby waited on for the lock with its stop requested.
    stop = ServeStop()
    stop._handle(signal.SIGTERM, None)  # read between the check and the hand-over
    waiting = asyncio.ensure_future(asyncio.sleep(30))
    stop.cancel_while_waiting(waiting)
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(waiting, 2)
