"""``purpleflea keys`` against the right key store, or a clear word that it is not there."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from purpleflea import cli
from purpleflea.commands.serve import banner
from purpleflea.local_server import record_address


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
    assert first.err.startswith(
        f"purpleflea keys: started a new key store, {data / 'keys.sqlite'}: only a server "
        f"run with --data-dir {data} and no PostgreSQL --store accepts this key\n"
    )
    assert cli.main(["keys", "--data-dir", str(data), "create", "--account", "you"]) == 0
    assert "new key store" not in capsys.readouterr().err  # the store was there
    assert cli.main(["keys", "--data-dir", str(data), "list"]) == 0
    assert capsys.readouterr().out.count(" you ") == 2


def test_the_banner_of_a_node_on_postgresql_names_the_store_its_keys_live_in() -> None:
    """An API node on PostgreSQL printed `purpleflea keys --data-dir DIR create`: that key went
    into DIR's SQLite file, which this server never reads (its keys are in PostgreSQL), so the
    key the banner told the operator to mint was refused as invalid."""
    shown = banner(
        "127.0.0.1",
        8123,
        "bus nats://bus:4222",
        Path("/srv/pf-api"),
        "postgresql://pf:secret@db.internal:5432/pf",
    )
    line = next(line for line in shown.splitlines() if "Get a key" in line)
    assert "purpleflea keys --store 'postgresql://pf:***@db.internal:5432/pf' create" in line
    assert "--data-dir" not in line
    assert "secret" not in shown
    single = banner("127.0.0.1", 8123, "sim", Path("/srv/pf"), None)
    assert "purpleflea keys --data-dir /srv/pf create --account you" in single


def test_revoking_a_key_twice_says_it_was_already_revoked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A second revoke printed "no active key" and exited 1, as for an id that never existed.
    data = tmp_path / "data"
    assert cli.main(["keys", "--data-dir", str(data), "create", "--account", "you"]) == 0
    key_id = capsys.readouterr().err.split("key_id ")[1].split()[0]
    assert cli.main(["keys", "--data-dir", str(data), "revoke", key_id]) == 0
    assert capsys.readouterr().out.startswith(f"revoked {key_id};")
    assert cli.main(["keys", "--data-dir", str(data), "revoke", key_id]) == 0
    assert capsys.readouterr().out.startswith(f"{key_id} was already revoked, at ")
    assert cli.main(["keys", "--data-dir", str(data), "revoke", "neverWas"]) == 1
    assert capsys.readouterr().err == "purpleflea keys: no key 'neverWas'\n"


def test_keys_in_the_folder_of_a_server_on_postgresql_point_to_its_store(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`keys --data-dir DIR create` said "only a server run with --data-dir DIR accepts this
    key" while the server running on DIR kept its keys in PostgreSQL: the key went to a file
    it never reads (and `revoke` revoked nothing it knows)."""
    data = tmp_path / "data"
    record_address(data, "http://127.0.0.1:8123", keys="postgresql://pf:***@db.internal/pf")
    for action in (["create"], ["list"], ["revoke", "abcdefgh"]):
        with pytest.raises(SystemExit) as exit_:
            cli.main(["keys", "--data-dir", str(data), *action])
        assert exit_.value.code == (
            f"purpleflea keys: the server running on {data} (http://127.0.0.1:8123) keeps its "
            "keys in PostgreSQL, not in this folder: pass its store, "
            "--store 'postgresql://pf:***@db.internal/pf' (with the password)"
        )
    assert not (data / "keys.sqlite").exists()
    # With no server there, what the folder's key file is for is said as it is.
    (data / "server.json").unlink()
    assert cli.main(["keys", "--data-dir", str(data), "create"]) == 0
    assert capsys.readouterr().err.startswith(
        f"purpleflea keys: started a new key store, {data / 'keys.sqlite'}: only a server run "
        f"with --data-dir {data} and no PostgreSQL --store accepts this key\n"
    )


def test_list_escapes_names_a_terminal_would_act_on(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Names stored before they had to be printable are listed with their control characters
    escaped: ESC sequences cleared the operator's screen and CR LF forged rows."""
    data = tmp_path / "data"
    assert cli.main(["keys", "--data-dir", str(data), "create", "--account", "ok"]) == 0
    capsys.readouterr()
    with sqlite3.connect(data / "keys.sqlite") as db:
        db.execute(
            "INSERT INTO api_keys (key_id, hash, account, name, created_at) "
            "VALUES ('legacy01', x'00', ?, ?, 0)",
            ("\x1b[2Jowned", "x\r\nFAKEID01"),
        )
    assert cli.main(["keys", "--data-dir", str(data), "list"]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out
    assert "\r" not in out
    assert len(out.splitlines()) == 3  # the header and two keys
    assert "\\x1b[2Jowned" in out
    with pytest.raises(SystemExit) as refused:
        cli.main(["keys", "--data-dir", str(data), "create", "--account", "a\x1b[2Jb"])
    assert "printable" in str(refused.value.code)


def test_create_prints_only_the_key_on_stdout(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # `export PURPLEFLEA_API_KEY=$(purpleflea keys create --account you)` took the note line
    # too ("pf_...\nkey_id ... for account 'you': store the key now, ..."), a key every client
    # refuses ("the API key has characters no key has"): stdout is the key, the note stderr.
    data = tmp_path / "data"
    assert cli.main(["keys", "--data-dir", str(data), "create", "--account", "you"]) == 0
    printed = capsys.readouterr()
    assert printed.out.startswith("pf_")
    assert printed.out.count("\n") == 1
    assert printed.out.strip() == printed.out.rstrip("\n")
    key_id = printed.err.split("key_id ")[1].split()[0]
    assert printed.out.startswith(f"pf_{key_id}")


def test_list_says_its_times_are_utc(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # "CREATED 2026-12-08 00:16" was UTC, as `history` writes it now, and said nothing of it.
    data = tmp_path / "data"
    assert cli.main(["keys", "--data-dir", str(data), "create", "--account", "you"]) == 0
    capsys.readouterr()
    assert cli.main(["keys", "--data-dir", str(data), "list"]) == 0
    header = capsys.readouterr().out.splitlines()[0]
    assert header.split() == ["KEY_ID", "ACCOUNT", "NAME", "CREATED", "(UTC)", "REVOKED", "(UTC)"]
