"""The README's run command: the tracker on simulated markets, offline, and `tail` on it."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.conftest import REPO
from tests.ports import announced_port, read_until


def test_the_readme_run_command_serves_simulated_markets_and_tail_shows_them(
    tmp_path: Path,
) -> None:
    readme = (REPO / "README.md").read_text()
    assert "scripts/run" in readme
    data = tmp_path / "data"
    # This machine reaches no exchange: the simulator is the offline source.
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    server = subprocess.Popen(
        [str(REPO / "scripts" / "run"), "--port", "0", "--data-dir", str(data)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        start_new_session=True,
    )
    try:
        # On the port it chose, which its banner names (tests/ports.py).
        banner = read_until(server.stdout, r"Watch:", timeout=120)
        text = "\n".join(banner)
        port = announced_port(text)
        assert f"http://127.0.0.1:{port}/" in text  # the dashboard
        assert "/v1/liquidations" in text  # the API
        assert "keys" in text
        assert "create" in text  # how to get a key
        key = subprocess.run(
            [
                sys.executable,
                "-m",
                "purpleflea.cli",
                "keys",
                "--data-dir",
                str(data),
                "create",
                "--account",
                "readme",
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.splitlines()[0]
        started = time.monotonic()
        tail = subprocess.run(
            [
                sys.executable,
                "-m",
                "purpleflea.cli",
                "tail",
                "--url",
                f"http://127.0.0.1:{port}",
                "--count",
                "5",
                "--color",
                "never",
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            env=dict(os.environ, PURPLEFLEA_API_KEY=key),
        )
        assert tail.returncode == 0, tail.stderr
        rows = [line for line in tail.stdout.splitlines() if " LIQ " in line]
        assert len(rows) == 5
        assert all(
            re.search(r"(LONG|SHORT) LIQ +[A-Z0-9]+-PERP +\$[\d,]+ .* Cascade: \d+/10", r)
            for r in rows
        )
        assert time.monotonic() - started < 30  # "within seconds"
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
