"""A key the server refuses: the command says which server refused it and how it was found."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from purpleflea import cli
from tests.server.conftest import Running


async def test_a_refused_key_names_the_server_and_where_its_address_came_from(
    live: Running, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # With its own server stopped (no DATA_DIR/server.json), `history --data-dir d2` asked
    # the default server, another one, and said only "the API key is not valid (unknown or
    # revoked)": the key was good, for a server the command had not reached.
    for command in (["history"], ["heatmap", "BTC-PERP"], ["tail", "--count", "1"]):
        argv = [*command, "--url", live.url, "--api-key", "pf_notAKeyOfThisServer"]
        status = await asyncio.to_thread(cli.main, argv)
        err = capsys.readouterr().err
        assert status == 2
        assert "the API key is not valid (unknown or revoked)" in err
        assert f"the server at {live.url} (--url) refused the key" in err, err
        assert "a key works only on the server that issued it" in err
        assert err.count("\n") == 1

    # A key no server could be sent is refused as such, naming no server.
    status = await asyncio.to_thread(
        cli.main, ["history", "--url", live.url, "--api-key", "pf_a b"]
    )
    err = capsys.readouterr().err
    assert status == 2
    assert "characters no key has" in err
    assert "server at" not in err
