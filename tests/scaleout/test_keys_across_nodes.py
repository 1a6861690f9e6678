"""Keys of a scale-out live in PostgreSQL (issue #16, finding 11): a key minted through one API
node works on every other, and a revocation made on one closes that key's streams on all of
them within a second."""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from purpleflea.server.auth import Gate
from purpleflea.server.keys import AccountExists, KeyLimitReached
from purpleflea.server.keys_postgres import PostgresKeyStore
from purpleflea.server.ratelimit import RateLimiter
from purpleflea.store.factory import redacted
from tests.scaleout.cluster import cluster
from tests.services import ensure_postgres


def _account() -> str:
    return f"acct-{uuid.uuid4().hex[:12]}"


def test_postgres_keys_follow_the_same_rules() -> None:
    stores = [PostgresKeyStore(ensure_postgres()) for _ in range(2)]  # two nodes
    try:
        account = _account()
        first = stores[0].register(account)
        with pytest.raises(AccountExists):
            stores[1].register(account)
        assert stores[1].verify(first.key) == first.info
        stores[1].mint(account, "second", cap=3)
        stores[0].mint(account, "third", cap=3)
        with pytest.raises(KeyLimitReached, match="3 active keys"):
            stores[1].mint(account, "fourth", cap=3)
        revoked = stores[1].revoke(first.info.key_id, account=account)
        assert revoked is not None
        assert not revoked.already
        assert stores[0].verify(first.key) is None
        # A repeat revoke on another node finds it already revoked; another account does not.
        again = stores[0].revoke(first.info.key_id, account=account)
        assert again is not None
        assert again.already
        assert again.revoked_at == revoked.revoked_at
        assert stores[0].revoke(first.info.key_id, account=_account()) is None
        assert stores[0].revoke("neverWas", account=account) is None
        assert first.info.key_id in stores[0].revoked_since(first.info.created_at)
    finally:
        for store in stores:
            store.close()


def test_racing_nodes_never_pass_the_cap() -> None:
    url = ensure_postgres()
    account = _account()
    seed = PostgresKeyStore(url)
    seed.register(account)
    seed.close()

    async def mint_all() -> list[bool]:
        stores = [PostgresKeyStore(url) for _ in range(4)]

        def mint(store: PostgresKeyStore) -> bool:
            try:
                store.mint(account, "race", cap=5)
            except KeyLimitReached:
                return False
            return True

        try:
            tries = [asyncio.to_thread(mint, stores[n % 4]) for n in range(20)]
            return list(await asyncio.gather(*tries))
        finally:
            for store in stores:
                store.close()

    assert sum(asyncio.run(mint_all())) == 4  # the registered key plus four: the cap of 5


async def test_a_revocation_on_one_gate_closes_streams_on_another_within_a_second() -> None:
    url = ensure_postgres()
    node_a, node_b = PostgresKeyStore(url), PostgresKeyStore(url)
    gate_b = Gate(node_b, RateLimiter(10, 40))
    kicked = asyncio.Event()
    watcher = asyncio.create_task(
        gate_b.watch_revocations(0.2, lambda: time.time_ns() // 1_000_000)
    )
    try:
        new = node_a.register(_account())
        info = gate_b.authenticate(new.key)  # cached on node b
        gate_b.streams.add(info, lambda _why: kicked.set())
        await asyncio.sleep(0.3)
        revoked_at = time.monotonic()
        revoked = node_a.revoke(new.info.key_id)
        assert revoked is not None
        assert not revoked.already
        await asyncio.wait_for(kicked.wait(), 1.0)
        assert time.monotonic() - revoked_at < 1.0
        with pytest.raises(Exception, match="not valid"):
            gate_b.authenticate(new.key)
    finally:
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher
        node_a.close()
        node_b.close()


async def test_keys_minted_on_one_api_node_work_and_die_on_another(tmp_path: Path) -> None:
    async with cluster(tmp_path) as services:
        # Separate data folders: nothing but the database is shared between the API nodes.
        node_a = services.node("api-a", "api", data_dir="api-a")
        node_b = services.node("api-b", "api", data_dir="api-b")
        await services.start(node_a, node_b)
        async with httpx.AsyncClient(timeout=5) as http:
            minted = await http.post(
                f"{node_a.url}/v1/keys",
                headers={"Authorization": f"Bearer {services.key}"},
                json={"name": "minted-on-a"},
            )
            assert minted.status_code == 201, minted.text
            key, key_id = minted.json()["key"], minted.json()["key_id"]
            on_b = await http.get(f"{node_b.url}/v1/keys", headers={"X-API-Key": key})
            assert on_b.status_code == 200, on_b.text
            assert key_id in {k["key_id"] for k in on_b.json()["keys"]}

            ws_url = "ws" + node_b.url[4:] + "/v1/stream"
            async with connect(ws_url, additional_headers={"X-API-Key": key}) as ws:
                await ws.send(json.dumps({"op": "subscribe"}))
                assert json.loads(await ws.recv())["type"] == "subscribed"
                revoked = await http.delete(
                    f"{node_a.url}/v1/keys/{key_id}", headers={"X-API-Key": services.key}
                )
                assert revoked.status_code == 200
                revoked_at = time.monotonic()
                error = None
                with contextlib.suppress(ConnectionClosed):
                    while True:
                        frame = json.loads(await asyncio.wait_for(ws.recv(), 3))
                        if frame["type"] == "error":
                            error = frame
                await asyncio.wait_for(ws.wait_closed(), 3)
                assert time.monotonic() - revoked_at < 1.0
                assert error is not None
                assert error["code"] == "key_revoked"
                assert ws.close_code == 4403
            gone = await http.get(f"{node_b.url}/v1/keys", headers={"X-API-Key": key})
            assert gone.status_code == 401
        # `keys --data-dir` in a node's folder would write a SQLite key file the node never
        # reads: it names the node's store instead (password masked).
        folder = str(tmp_path / "api-a")
        refused = subprocess.run(
            [sys.executable, "-m", "purpleflea.cli", "keys", "--data-dir", folder, "create"],
            capture_output=True,
            text=True,
            check=False,
        )
        assert refused.returncode == 1, refused
        assert "keeps its keys in PostgreSQL" in refused.stderr
        assert f"--store '{redacted(services.store_url)}'" in refused.stderr
        assert not (tmp_path / "api-a" / "keys.sqlite").exists()
