"""Accounts belong to their owners (issue #16, findings 1 and 2): registration never joins an
existing account, keys mint keys only for their own account up to a cap, limits are per
account, and proxy headers are believed only from the operator's proxies."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from purpleflea.server.keys import (
    AccountExists,
    KeyLimitReached,
    Revocation,
    SQLiteKeyStore,
    UnknownAccount,
)
from purpleflea.server.ratelimit import SITE_SHARE
from tests.server.conftest import Running, make_config, running_server


def _auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def test_registration_cannot_take_over_an_existing_account(live: Running) -> None:
    async with httpx.AsyncClient(base_url=live.url) as http:
        victim = await http.post("/v1/keys", json={"account": "victim@corp"})
        assert victim.status_code == 201
        victim_key = victim.json()["key"]
        for account in ("victim@corp", " victim@corp "):
            attacker = await http.post("/v1/keys", json={"account": account, "name": "x"})
            assert attacker.status_code == 409, attacker.text
            error = attacker.json()["error"]
            assert error["code"] == "account_exists"
            assert "victim@corp" in error["message"]
            assert "key" not in attacker.json()
        # The operator's test account cannot be joined either.
        joined = await http.post("/v1/keys", json={"account": "tester"})
        assert joined.status_code == 409
        # The victim's account holds exactly its own key, which still works.
        listed = await http.get("/v1/keys", headers=_auth(victim_key))
        assert listed.status_code == 200
        assert [k["name"] for k in listed.json()["keys"]] == ["default"]


async def test_a_key_mints_keys_for_its_own_account_up_to_the_cap(tmp_path: Path) -> None:
    config = make_config(tmp_path, keys_per_account=4)
    async with running_server(config) as live, httpx.AsyncClient(base_url=live.url) as http:
        first = (await http.post("/v1/keys", json={"account": "minter"})).json()
        statuses = [
            (await http.post("/v1/keys", headers=_auth(first["key"]), json={"name": f"k{n}"}))
            for n in range(6)
        ]
        assert [r.status_code for r in statuses] == [201, 201, 201, 403, 403, 403]
        refused = statuses[-1].json()["error"]
        assert refused["code"] == "key_limit_reached"
        assert "4" in refused["message"]
        # Revoking one frees a place.
        revoked = await http.delete(
            f"/v1/keys/{statuses[0].json()['key_id']}", headers=_auth(first["key"])
        )
        assert revoked.status_code == 200
        again = await http.post("/v1/keys", headers=_auth(first["key"]), json={})
        assert again.status_code == 201
        assert again.json()["account"] == "minter"
        assert live.server.keys.active_count("minter") == 4


async def test_rate_limits_are_per_account_not_per_key(tmp_path: Path) -> None:
    config = make_config(tmp_path, rate_per_s=10.0, rate_burst=40.0)
    async with running_server(config) as live:
        keys = [live.server.keys.create("farm", f"k{n}").key for n in range(20)]
        async with httpx.AsyncClient(base_url=live.url) as http:
            started = time.monotonic()
            statuses = [
                await http.get("/v1/keys", headers=_auth(key)) for _ in range(40) for key in keys
            ]
            elapsed = time.monotonic() - started
            accepted = sum(r.status_code == 200 for r in statuses)
            # One account's budget: the burst plus what the rate refilled meanwhile.
            assert accepted <= 40 + 10 * elapsed + 1, (accepted, elapsed)
            limited = [r for r in statuses if r.status_code == 429]
            assert limited
            assert "account 'farm'" in limited[0].json()["error"]["message"]
            assert int(limited[0].headers["Retry-After"]) >= 1
            # Another account is not affected by the farm's exhaustion.
            assert (await http.get("/v1/keys", headers=_auth(live.key))).status_code == 200


async def test_forwarded_for_is_ignored_unless_the_peer_is_a_trusted_proxy(tmp_path: Path) -> None:
    async def register_from(live: Running) -> list[int]:
        async with httpx.AsyncClient(base_url=live.url) as http:
            return [
                (
                    await http.post(
                        "/v1/keys",
                        json={"account": f"xff-{n}"},
                        headers={"X-Forwarded-For": f"203.0.113.{n}"},
                    )
                ).status_code
                for n in range(15)
            ]

    async with running_server(make_config(tmp_path / "a", registrations_per_min=10)) as live:
        statuses = await register_from(live)
        assert statuses.count(201) == 10, statuses
        assert statuses[10:] == [429] * 5
    trusting = make_config(tmp_path / "b", registrations_per_min=10, trusted_proxies=("127.0.0.1",))
    async with running_server(trusting) as live:
        # Behind a proxy the operator named, each forwarded client has its own budget.
        assert await register_from(live) == [201] * 15


async def _register(http: httpx.AsyncClient, account: str, address: str) -> int:
    """``POST /v1/keys`` for ``account`` as if from ``address`` (forwarded by a trusted
    proxy); the status."""
    forwarded = {"X-Forwarded-For": address}
    response = await http.post("/v1/keys", json={"account": account}, headers=forwarded)
    return response.status_code


async def test_the_addresses_of_one_ipv6_network_share_one_registration_budget(
    tmp_path: Path,
) -> None:
    """Anyone with a server on IPv6 holds a /64, 2**64 addresses: the budget per address gave
    them unlimited accounts (10 a minute from each), and with them every per-account limit
    many times over. A /64 is one client; IPv4-mapped IPv6 is its IPv4 address."""
    config = make_config(tmp_path, registrations_per_min=10, trusted_proxies=("127.0.0.1",))
    async with running_server(config) as live, httpx.AsyncClient(base_url=live.url) as http:
        same_64 = [await _register(http, f"v6-{n}", f"2001:db8:1:2::{n:x}") for n in range(1, 13)]
        assert same_64 == [201] * 10 + [429] * 2
        # Another /64 has its own budget.
        assert await _register(http, "v6-other", "2001:db8:1:3::1") == 201
        mapped = [await _register(http, f"v4-{n}", "::ffff:198.51.100.7") for n in range(10)]
        assert mapped == [201] * 10
        assert await _register(http, "v4-last", "198.51.100.7") == 429


async def test_the_networks_of_one_ipv6_site_share_a_larger_budget(tmp_path: Path) -> None:
    """A /64 each is not enough either: a free IPv6 tunnel comes with a /48 (65,536 /64s),
    each with the whole per-address budget: 655,360 accounts a minute for one person, as
    fast as the server could make them (1,000 accounts and 4 MB of keys.sqlite and its WAL
    in 2.7 s on the VM). The /64s of a /48 share ten times one address's budget."""
    config = make_config(tmp_path, registrations_per_min=10, trusted_proxies=("127.0.0.1",))
    async with running_server(config) as live, httpx.AsyncClient(base_url=live.url) as http:
        made = 0
        began = time.monotonic()
        for net in range(12):
            for n in range(10):
                status = await _register(http, f"site-{net}-{n}", f"2001:db8:7:{net:x}::{n + 1:x}")
                assert status in (201, 429), status
                made += status == 201
        # The site's bucket refills 100 a minute while the 120 requests run (one more on a
        # loaded CI machine, where they took 1.5 s): 120 made means no site budget at all.
        refilled = int((time.monotonic() - began) * SITE_SHARE * 10 / 60)
        assert refilled < 20, f"the requests took too long to tell ({refilled} refilled)"
        assert 100 <= made <= 100 + refilled
        # Another /48 has its own.
        assert await _register(http, "other-site", "2001:db8:8:0::1") == 201


async def test_closed_registration_refuses_new_accounts_but_keys_still_mint(
    tmp_path: Path,
) -> None:
    config = make_config(tmp_path, registration_open=False)
    async with running_server(config) as live, httpx.AsyncClient(base_url=live.url) as http:
        refused = await http.post("/v1/keys", json={"account": "stranger"})
        assert refused.status_code == 403
        assert refused.json()["error"]["code"] == "registration_closed"
        minted = await http.post("/v1/keys", headers=_auth(live.key), json={"name": "b"})
        assert minted.status_code == 201
        assert minted.json()["account"] == "tester"


def test_the_operator_adds_keys_to_any_account_from_the_cli(tmp_path: Path) -> None:
    store = SQLiteKeyStore(tmp_path / "keys.sqlite")
    store.register("owner")
    store.close()

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "purpleflea.cli", "keys", "--data-dir", str(tmp_path), *args],
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )

    for _ in range(12):  # past any API cap: the operator is not capped
        done = cli("create", "--account", "owner", "--name", "ops")
        assert done.returncode == 0, done.stderr
        assert done.stdout.startswith("pf_")
    store = SQLiteKeyStore(tmp_path / "keys.sqlite")
    assert store.active_count("owner") == 13
    store.close()


def test_store_rules(tmp_path: Path) -> None:
    store = SQLiteKeyStore(tmp_path / "keys.sqlite")
    first = store.register("alice")
    with pytest.raises(AccountExists, match="alice"):
        store.register("alice")
    with pytest.raises(UnknownAccount, match="nobody"):
        store.mint("nobody", "x", cap=10)
    store.mint("alice", "second", cap=2)
    with pytest.raises(KeyLimitReached, match="2 active keys"):
        store.mint("alice", "third", cap=2)
    revoked = store.revoke(first.info.key_id, account="alice")
    assert revoked is not None
    assert not revoked.already
    store.mint("alice", "third", cap=2)
    # A repeat revoke (a retry whose first answer was lost) finds the key already revoked.
    assert store.revoke(first.info.key_id, account="alice") == Revocation(
        key_id=first.info.key_id, revoked_at=revoked.revoked_at, already=True
    )
    # Another account's key, or one that never existed, is not found (no oracle).
    assert store.revoke(first.info.key_id, account="bob") is None
    assert store.revoke("neverWas", account="alice") is None
    store.close()


def test_an_old_key_file_keeps_its_accounts(tmp_path: Path) -> None:
    """A key file from before accounts existed: its accounts cannot be registered again."""
    import sqlite3

    path = tmp_path / "keys.sqlite"
    db = sqlite3.connect(path)
    db.executescript(
        "CREATE TABLE api_keys (key_id TEXT PRIMARY KEY, hash BLOB NOT NULL UNIQUE, "
        "account TEXT NOT NULL, name TEXT NOT NULL, created_at INTEGER NOT NULL, "
        "revoked_at INTEGER);"
        "INSERT INTO api_keys VALUES ('abcdefgh', x'00', 'victim@corp', 'default', 1, NULL);"
    )
    db.commit()
    db.close()
    store = SQLiteKeyStore(path)
    with pytest.raises(AccountExists):
        store.register("victim@corp")
    assert store.active_count("victim@corp") == 1
    store.close()


def test_racing_minters_never_pass_the_cap(tmp_path: Path) -> None:
    """The server and the CLI are two processes on one file: two connections here, minting
    from several threads at once."""
    path = tmp_path / "keys.sqlite"
    stores = [SQLiteKeyStore(path), SQLiteKeyStore(path)]
    stores[0].register("shared")
    minted: list[str] = []
    refused: list[str] = []

    def mint(store: SQLiteKeyStore) -> None:
        for _ in range(10):
            try:
                minted.append(store.mint("shared", "race", cap=10).info.key_id)
            except KeyLimitReached:
                refused.append("x")

    threads = [threading.Thread(target=mint, args=(stores[n % 2],)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(minted) == 9  # plus the registered one: the cap of 10
    assert len(refused) == 51
    assert stores[1].active_count("shared") == 10
    for store in stores:
        store.close()


def test_no_key_id_starts_with_a_dash(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # `purpleflea keys revoke -xaXb7fO` failed (argparse read the id as an option; CI saw it
    # once in 64 runs of a test). A token that would give such an id is drawn again.
    from purpleflea.server import keys as key_module

    drawn = iter(["-xaXb7fO" + "A" * 35, "kaXb7fO" + "B" * 36])
    monkeypatch.setattr(key_module.secrets, "token_urlsafe", lambda n: next(drawn))
    store = SQLiteKeyStore(tmp_path / "keys.sqlite")
    made = store.create("trader")
    assert made.info.key_id == "kaXb7fOB"
    assert made.key == "pf_kaXb7fO" + "B" * 36


async def test_names_with_control_characters_are_refused(live: Running) -> None:
    """An account or key name is printed in the operator's ``purpleflea keys list``: a
    stranger registered ``\\x1b[2J\\x1b[H...`` (clear the screen) and a key name with CR LF that
    forged a row of the listing. Names must be printable (spaces and any script are fine)."""
    async with httpx.AsyncClient(base_url=live.url) as http:
        for body in (
            {"account": "\x1b[2J\x1b[Howned"},
            {"account": "desk\r\nFAKEID01"},
            {"account": "desk\u202egnp.exe"},  # right-to-left override: shows another name
            {"account": "desk-9", "name": "x\r\nFAKEID01   operator"},
        ):
            answer = await http.post("/v1/keys", json=body)
            assert answer.status_code == 400, body
            assert "printable" in answer.json()["error"]["message"]
        ok = await http.post("/v1/keys", json={"account": "Desk Zürich 東京", "name": "a b"})
        assert ok.status_code == 201
        minted = await http.post(
            "/v1/keys", headers=_auth(ok.json()["key"]), json={"name": "tab\there"}
        )
        assert minted.status_code == 400
    listed = {info.account for info in live.server.keys.list_keys()}
    assert listed == {"tester", "Desk Zürich 東京"}
