"""The client commands find the local server, or fail fast with one line that says what to do."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from purpleflea import cli
from purpleflea.local_server import (
    FILE_NAME,
    client_url,
    find_address,
    record_address,
    remove_address,
)
from tests.conftest import REPO
from tests.ports import ANNOUNCED, announced_port, read_until, refused_url


def _dead_pid() -> int:
    """A pid no process has: one that just exited."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def _env() -> dict[str, str]:
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    env.pop("PURPLEFLEA_URL", None)
    return env


@contextmanager
def _serve(cwd: Path) -> Iterator[tuple[subprocess.Popen[str], int]]:
    """``purpleflea serve`` on simulated markets, its data folder the default ``./data``, on
    a port of its choosing (--port 0), and that port, from its banner (tests/ports.py)."""
    server = subprocess.Popen(
        [sys.executable, "-m", "purpleflea.cli", "serve", "--port", "0", "--markets", "40"],
        cwd=cwd,
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        banner = read_until(server.stdout, ANNOUNCED.pattern, timeout=120)
        yield server, announced_port(banner[-1])
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGTERM)
            try:
                server.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)


def _readme_tail_line() -> str:
    readme = (REPO / "README.md").read_text()
    blocks = re.findall(r"```sh\n(.*?)```", readme, flags=re.DOTALL)
    lines = [line for block in blocks for line in block.splitlines() if " tail" in line]
    assert len(lines) == 1, lines
    return lines[0]


def test_the_readme_tail_line_finds_a_server_on_another_port(tmp_path: Path) -> None:
    with _serve(tmp_path) as (server, port):
        assert port != 8000
        record = tmp_path / "data" / FILE_NAME
        assert find_address(tmp_path / "data") == f"http://127.0.0.1:{port}"
        key = subprocess.run(
            [sys.executable, "-m", "purpleflea.cli", "keys", "create", "--account", "readme"],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.splitlines()[0]
        # Exactly as the README writes it, from the server's working directory, with the
        # venv's commands on PATH (as the README says to set up).
        line = _readme_tail_line().replace("<key>", key)
        env = _env()
        env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
        tail = subprocess.Popen(
            ["bash", "-c", line],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        try:
            rows = read_until(tail.stdout, r"(LONG|SHORT) LIQ .* Cascade: \d+/10", timeout=90)
        finally:
            os.killpg(tail.pid, signal.SIGTERM)
            _, errors = tail.communicate(timeout=20)
        assert "Traceback" not in errors
        assert any(" LIQ " in row for row in rows)
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(20)
        assert not record.exists(), "a clean exit removes the address record"


@pytest.mark.parametrize(
    "command",
    [["tail"], ["history"], ["heatmap", "BTC-PERP"]],
    ids=["tail", "history", "heatmap"],
)
def test_a_client_command_without_a_server_says_so_in_one_line(
    tmp_path: Path, command: list[str]
) -> None:
    with refused_url() as url:
        started = time.monotonic()
        done = subprocess.run(
            [sys.executable, "-m", "purpleflea.cli", *command, "--url", url, "--api-key", "pf_x"],
            cwd=tmp_path,
            env=_env(),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert done.returncode == 2
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(f"purpleflea {command[0]}: no Purple Flea server answers")
    assert url in lines[0]
    assert "purpleflea serve" in lines[0]
    assert "--url" in lines[0]
    assert time.monotonic() - started < 30  # python's start included; see the next test


def test_a_server_that_never_answers_fails_the_command_within_3_s(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with socket.socket() as silent:  # accepts connections (the kernel does) but never replies
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        started = time.monotonic()
        status = cli.main(["tail", "--url", url, "--api-key", "pf_x", "--color", "never"])
        elapsed = time.monotonic() - started
    assert status == 2
    assert elapsed < 3.0
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1
    assert f"{url}: no answer" in err[0]


def test_without_a_url_the_default_and_where_it_was_looked_up_are_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PURPLEFLEA_URL", raising=False)
    data = tmp_path / "data"
    data.mkdir()
    # A record left by a server killed with kill -9 (its process is gone): not trusted.
    (data / FILE_NAME).write_text(f'{{"url": "http://127.0.0.1:1", "pid": {_dead_pid()}}}')
    with refused_url() as nowhere:
        monkeypatch.setattr("purpleflea.client._config.DEFAULT_URL", nowhere)
        status = cli.main(["history", "--data-dir", str(data), "--api-key", "pf_x"])
    assert status == 2
    err = capsys.readouterr().err
    assert "127.0.0.1:1 " not in err
    assert f"no running server recorded in {data / FILE_NAME}" in err


def test_the_address_record_names_its_process_and_is_ignored_once_that_is_gone(
    tmp_path: Path,
) -> None:
    assert find_address(tmp_path) is None
    path = record_address(tmp_path, "http://127.0.0.1:8123")
    assert path == tmp_path / FILE_NAME
    assert find_address(tmp_path) == "http://127.0.0.1:8123"
    remove_address(path)
    assert not path.exists()
    path.write_text(f'{{"url": "http://127.0.0.1:8123", "pid": {_dead_pid()}}}')
    assert find_address(tmp_path) is None
    assert record_address(tmp_path, "http://127.0.0.1:8124") == path  # replaces a stale one
    assert find_address(tmp_path) == "http://127.0.0.1:8124"


def test_a_live_servers_record_is_neither_replaced_nor_removed_by_another(tmp_path: Path) -> None:
    path = tmp_path / FILE_NAME
    path.write_text(f'{{"url": "http://127.0.0.1:8123", "pid": {os.getppid()}}}')
    assert record_address(tmp_path, "http://127.0.0.1:8124") is None
    remove_address(path)
    assert find_address(tmp_path) == "http://127.0.0.1:8123"


@pytest.mark.parametrize("pid", ["0", "-1", "own-group", "99999999999999999999", "true"])
def test_a_record_whose_pid_no_process_can_have_names_no_server(tmp_path: Path, pid: str) -> None:
    # A huge pid raised OverflowError out of os.kill (the SDK's unreachable-server message
    # reads the record); 0 and a negative pid signal a process group (0: our own), and a
    # boolean is an int to json: none of them is a server's process. (The group's id is read
    # here, not in the ids: xdist's workers each collect the tests and must agree on them.)
    if pid == "own-group":
        pid = f"-{os.getpgrp()}"
    path = tmp_path / FILE_NAME
    path.write_text(f'{{"url": "http://127.0.0.1:8123", "pid": {pid}}}')
    assert find_address(tmp_path) is None
    assert record_address(tmp_path, "http://127.0.0.1:8124") == path  # replaces it
    assert find_address(tmp_path) == "http://127.0.0.1:8124"


def test_a_wildcard_bind_is_reached_over_loopback() -> None:
    assert client_url("0.0.0.0", 8000) == "http://127.0.0.1:8000"
    assert client_url("::", 8000) == "http://[::1]:8000"
    assert client_url("10.1.2.3", 9000) == "http://10.1.2.3:9000"


def test_port_0_serves_on_the_port_the_system_chose_and_says_which(tmp_path: Path) -> None:
    # --port 0 (any free port) printed "http://127.0.0.1:0" and recorded it for the client
    # commands, which then could not reach the server.
    server = subprocess.Popen(
        [sys.executable, "-m", "purpleflea.cli", "serve", "--port", "0", "--markets", "10"],
        cwd=tmp_path,
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        lines = read_until(server.stdout, r"Purple Flea tracker: http://", timeout=120)
        found = re.search(r"Purple Flea tracker: (http://127\.0\.0\.1:(\d+))", lines[-1])
        assert found is not None, lines
        url, port = found.group(1), int(found.group(2))
        assert port != 0, lines
        assert find_address(tmp_path / "data") == url
        assert httpx.get(url + "/v1/health", timeout=5).status_code == 200
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(20)
