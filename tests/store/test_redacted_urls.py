"""Store and bus URLs in errors, logs, banners and ``/v1/health`` (which anyone may read)
never show a password: a PostgreSQL outage put ``postgresql://user:secret@db/...`` verbatim
into the ingest node's health reasons, its banner and its log."""

from __future__ import annotations

import socket

import pytest

from purpleflea.server.keys_postgres import PostgresKeyStore
from purpleflea.server.sequencer import hold_sequencer_lock
from purpleflea.store.accounts import open_account_store
from purpleflea.store.factory import open_store, redacted
from purpleflea.store.postgres import PostgresStore
from purpleflea.store.webhooks import open_webhook_store


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (
            "postgresql://purpleflea:secret@db.internal:5432/purpleflea",
            "postgresql://purpleflea:***@db.internal:5432/purpleflea",
        ),
        ("postgresql://postgres@127.0.0.1:5432/pf", "postgresql://postgres@127.0.0.1:5432/pf"),
        (
            "postgres://u@h/db?sslmode=require&password=secret",
            "postgres://u@h/db?sslmode=require&password=***",
        ),
        ("postgresql://u:p%40secret@h/db", "postgresql://u:***@h/db"),
        ("nats://u:secret@bus:4222?stream=S&prefix=p", "nats://u:***@bus:4222?stream=S&prefix=p"),
        ("nats://secrettoken@bus:4222", "nats://***@bus:4222"),
        ("nats://bus.internal:4222", "nats://bus.internal:4222"),
        ("sqlite:///var/lib/pf/history.sqlite", "sqlite:///var/lib/pf/history.sqlite"),
        # libpq's other secret (the client key's passphrase), and parameter names it decodes.
        ("postgresql://u@h/db?sslpassword=secret", "postgresql://u@h/db?sslpassword=***"),
        ("postgresql://u@h/db?pass%77ord=secret", "postgresql://u@h/db?pass%77ord=***"),
        # A Unix-socket URL (no authority) keeps its "//": it is still the URL given.
        (
            "postgresql:///pf?host=/run/postgresql&password=secret",
            "postgresql:///pf?host=/run/postgresql&password=***",
        ),
    ],
)
def test_redacted_hides_the_password_and_keeps_the_rest(url: str, shown: str) -> None:
    assert redacted(url) == shown


async def test_connection_errors_name_the_server_without_its_password() -> None:
    url = f"postgresql://purpleflea:secret@127.0.0.1:{_closed_port()}/pf"
    attempts = [
        lambda: PostgresStore.connect(url),
        lambda: open_webhook_store(url).webhooks(),
        lambda: open_account_store(url).recent("hyperliquid", 1),
        lambda: hold_sequencer_lock(url),
    ]
    for attempt in attempts:
        with pytest.raises(ConnectionError) as caught:
            await attempt()
        assert "secret" not in str(caught.value)
        assert ":***@127.0.0.1:" in str(caught.value)
    with pytest.raises(ConnectionError) as refused:
        PostgresKeyStore(url)
    assert "secret" not in str(refused.value)
    assert ":***@127.0.0.1:" in str(refused.value)


async def test_a_mistyped_scheme_is_refused_without_its_password() -> None:
    # `purpleflea serve --store postgresq://...` printed the URL, password and all.
    with pytest.raises(ValueError, match="unknown scheme 'postgresq'") as refused:
        await open_store("postgresq://purpleflea:secret@db.internal/pf")
    assert "secret" not in str(refused.value)
    assert "purpleflea:***@db.internal" in str(refused.value)
