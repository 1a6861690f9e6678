"""``purpleflea tail`` that found its server in the data folder's address record follows a
restart of that server on another port (``serve --port 0`` takes a new one each time)."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

from purpleflea.local_server import record_address
from tests.server.conftest import make_config, running_server, until, venue_event


async def test_tail_follows_its_recorded_server_to_a_new_port(tmp_path: Path) -> None:
    # It went on asking the old port for good ("cannot reach http://127.0.0.1:37457 ...;
    # retrying"), while the restarted server's record named the new one.
    env = {name: value for name, value in os.environ.items() if name != "PURPLEFLEA_URL"}
    config = make_config(tmp_path)
    argv = ["tail", "--data-dir", str(tmp_path), "--count", "1", "--color", "never"]
    async with running_server(config) as first:
        record_address(tmp_path, first.url)
        command = await asyncio.create_subprocess_exec(
            *(sys.executable, "-m", "purpleflea.cli", *argv, "--api-key", first.key),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=env,
        )
        await until(lambda: len(first.server.gate.streams) == 1, 60, "tail's stream")
    try:
        # The first server is gone (its record stays: this process is alive); a new one on
        # another port of the same folder records itself, as `purpleflea serve` does.
        async with running_server(config) as second:
            assert second.url != first.url
            record_address(tmp_path, second.url)
            await until(lambda: len(second.server.gate.streams) == 1, 60, "tail on the new port")
            await second.push(venue_event(size_usd=80_000))
            async with asyncio.timeout(60):
                out, err = await command.communicate()
    finally:
        if command.returncode is None:
            command.kill()
            await command.wait()
    assert command.returncode == 0
    assert "LONG LIQ" in out.decode()
    assert f"is now at {second.url}; following it" in err.decode()
