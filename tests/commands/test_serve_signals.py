"""Ctrl-C (SIGINT) and SIGTERM at each moment of ``purpleflea serve``'s startup and run: it
stops within seconds, says so, exits with 128 + the signal, prints no traceback, and a stop
after the store opened records a clean stop in the seq mark.

Found: SIGINT during the startup was lost in a garbage collector callback ("Exception ignored
... KeyboardInterrupt") and the server served on until a second one; read before uvicorn took
the signals it ended in tracebacks (uvicorn's lifespan cancelled); read during the
simulator's warm-up (seconds to a minute, on a thread) the exit waited for the whole warm-up
(13-22 s at load 8-12), and a banner was printed after the signal.
"""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest

from tests.commands.signals import Command, assert_stopped

#: Seconds from the signal to the exit: the graceful stop takes ~0.2-1.7 s at load 8-12.
PROMPT_S = 8.0
#: Seconds the startup may take on a busy machine before a moment is reached.
STARTUP_S = 60.0
BANNER = "Purple Flea tracker:"


def _serve(data: Path, prelude: str = "") -> Command:
    return Command("serve", "--data-dir", str(data), "--port", "0", prelude=prelude)


def _slow_stop(command: Command, took: float) -> str:
    """Why a stop took too long: its wall time and its CPU (a stop that waited for work, or
    one starved of CPU by the machine's load), and the output."""
    cpu = command.cpu_to_stop
    spent = "" if cpu is None else f" ({cpu:.2f} s of CPU)"
    return f"{took:.1f} s{spent} to stop:\n{command.output}"


def _clean_stop_recorded(data: Path) -> None:
    mark = json.loads((data / "purpleflea.sqlite.seqmark").read_text())
    assert mark["clean"] is True, mark


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_before_the_port_answers_stops_the_startup(
    tmp_path: Path, signum: signal.Signals
) -> None:
    # server.json is written once the port is bound, before the app's startup (store
    # warm-up, engine, venues) lets it answer.
    command = _serve(tmp_path)
    command.wait_for((tmp_path / "server.json").exists, STARTUP_S, "server.json")
    command.send(signum)
    status, took = command.exit(PROMPT_S * 3)
    assert_stopped(command, status, signum)
    assert took < PROMPT_S, _slow_stop(command, took)
    assert BANNER not in command.output.split(signum.name, 1)[1], command.output
    assert not (tmp_path / "server.json").exists()


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_while_serving_and_warming_the_simulator_stops_within_seconds(
    tmp_path: Path, signum: signal.Signals
) -> None:
    # The banner comes while the simulator's 275 markets still warm up on a thread.
    command = _serve(tmp_path)
    command.wait_for_line(BANNER, STARTUP_S)
    command.send(signum)
    status, took = command.exit(PROMPT_S * 3)
    assert_stopped(command, status, signum)
    assert took < PROMPT_S, _slow_stop(command, took)
    assert command.output.count(f"{signum.name} received") == 1, command.output
    _clean_stop_recorded(tmp_path)


def test_a_second_ctrl_c_during_the_stop_stops_at_once(tmp_path: Path) -> None:
    command = _serve(tmp_path)
    command.wait_for_line(BANNER, STARTUP_S)
    command.send(signal.SIGINT)
    command.wait_for_line("SIGINT received, stopping", PROMPT_S)
    command.send(signal.SIGINT)
    status, took = command.exit(PROMPT_S * 3)
    assert "Traceback" not in command.output, command.output
    assert status == 130, command.output
    assert took < PROMPT_S, _slow_stop(command, took)


#: A startup step of the app (as a venue's server or the bus may take) that never ends.
_STARTUP_STEP_HANGS = """
import asyncio
from purpleflea.server import app

_measured_maps = app._measured_maps

def _with_a_hanging_step(config, built):
    async def step():
        print("a startup step began", flush=True)
        await asyncio.Event().wait()
    built.starters.append(step)
    return _measured_maps(config, built)

app._measured_maps = _with_a_hanging_step
"""


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_during_a_startup_step_does_not_wait_for_the_step(
    tmp_path: Path, signum: signal.Signals
) -> None:
    # Found: the signal set uvicorn's should_exit, read only once the app's whole startup
    # was done (the store warmed, venues and the simulator started): 8-13 s at load 12.
    command = _serve(tmp_path, _STARTUP_STEP_HANGS)
    command.wait_for_line("a startup step began", STARTUP_S)
    command.send(signum)
    status, took = command.exit(PROMPT_S * 3)
    assert_stopped(command, status, signum)
    assert took < PROMPT_S, _slow_stop(command, took)
    assert BANNER not in command.output, command.output
    assert not (tmp_path / "server.json").exists()


#: The simulator's build (its markets set up before the warm-up's blocks, ~0.35 s of CPU,
#: 3-5 s at load 10) as a computation no stop reaches.
_SIMULATOR_BUILD_HANGS = """
import threading
from purpleflea.server import sources

def _building(*args, **kwargs):
    print("the simulator is being built", flush=True)
    threading.Event().wait(120)
    raise RuntimeError("the build was waited for")

sources.live_simulator = _building
"""


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_while_the_simulator_is_built_does_not_wait_for_the_build(
    tmp_path: Path, signum: signal.Signals
) -> None:
    # Found: the build ran on asyncio's default executor, which asyncio.run joins as it
    # ends: the process waited for the build after the server had stopped (3-5 s at load 10).
    command = _serve(tmp_path, _SIMULATOR_BUILD_HANGS)
    command.wait_for_line(BANNER, STARTUP_S)
    command.wait_for_line("the simulator is being built", STARTUP_S)
    command.send(signum)
    status, took = command.exit(PROMPT_S * 3)
    assert_stopped(command, status, signum)
    assert took < PROMPT_S, _slow_stop(command, took)
    _clean_stop_recorded(tmp_path)
