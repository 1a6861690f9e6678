"""Discovered accounts survive a restart, in both backends: SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest

from purpleflea.store.accounts import AccountStore, open_account_store
from purpleflea.store.sidecar import SQLiteStatements
from purpleflea.store.sidecar_postgres import PostgresStatements
from tests.services import ensure_postgres

A = "0x9b54264d7502f80163ea949038aad771eae67e38"
B = "0x706bb519b05b7dc01d048af9a5e29d1ef5d6d9e3"
C = "0x94d3735543ecb3d339064151118644501c933814"


def _empty_postgres() -> str:
    dsn = ensure_postgres()
    with psycopg.connect(dsn, autocommit=True) as connection:
        connection.execute("DROP TABLE IF EXISTS sampled_accounts")
    return dsn


@pytest.fixture(params=["sqlite", "postgres"])
def opener(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[], AccountStore]:
    url = f"sqlite://{tmp_path / 'history.sqlite'}" if request.param == "sqlite" else None
    url = url or _empty_postgres()
    kind = SQLiteStatements if request.param == "sqlite" else PostgresStatements

    def open_() -> AccountStore:
        store = open_account_store(url)
        assert isinstance(store.backend, kind)
        return store

    return open_


async def test_accounts_are_listed_most_recent_first_after_a_restart(
    opener: Callable[[], AccountStore],
) -> None:
    store = opener()
    await store.add("hyperliquid", [A, B.upper().replace("0X", "0x")], seen_at=1_000)
    await store.add("hyperliquid", [C], seen_at=2_000)
    await store.add("hyperliquid", [A], seen_at=3_000)  # seen again: most recent now
    await store.add("hyperliquid", [C], seen_at=1_500)  # older news changes nothing
    await store.add("other", [B], seen_at=9_000)
    await store.close()

    reopened = opener()
    assert await reopened.recent("hyperliquid", 10) == [A, C, B]
    assert await reopened.recent("hyperliquid", 2) == [A, C]
    assert await reopened.recent("other", 10) == [B]
    assert await reopened.recent("nowhere", 10) == []
    await reopened.close()
