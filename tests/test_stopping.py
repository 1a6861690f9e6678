"""The one rule for signals (purpleflea/stopping.py), shown in a child interpreter so that
the test process's own handlers stay as they are."""

from __future__ import annotations

import subprocess
import sys
import textwrap

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
