"""``purpleflea keys`` against the right key store, or a clear word that it is not there."""

from __future__ import annotations

from pathlib import Path

import pytest

from purpleflea import cli


def test_list_and_revoke_in_a_folder_without_keys_say_so_and_create_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A mistyped --data-dir made a fresh, empty key store there and listed nothing, exit 0.
    missing = tmp_path / "dat"
    for action in (["list"], ["revoke", "abc123"]):
        with pytest.raises(SystemExit) as exit_:
            cli.main(["keys", "--data-dir", str(missing), *action])
        assert exit_.value.code == (
            f"purpleflea keys: no key store in {missing} (no keys.sqlite): is the server's data "
            "folder elsewhere? pass it with --data-dir"
        )
        assert not missing.exists()


def test_create_says_when_it_starts_a_new_key_store(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Run from another folder than the server's, it made a key that server never accepts.
    data = tmp_path / "data"
    assert cli.main(["keys", "--data-dir", str(data), "create", "--account", "you"]) == 0
    first = capsys.readouterr()
    assert first.out.startswith("pf_")
    assert first.err == (
        f"purpleflea keys: started a new key store, {data / 'keys.sqlite'}: only a server "
        f"run with --data-dir {data} accepts this key\n"
    )
    assert cli.main(["keys", "--data-dir", str(data), "create", "--account", "you"]) == 0
    assert capsys.readouterr().err == ""  # the store was there
    assert cli.main(["keys", "--data-dir", str(data), "list"]) == 0
    assert capsys.readouterr().out.count(" you ") == 2
