"""``purpleflea keys create|list|revoke``: the operator's key management.

The operator holds the key store itself (the data folder's SQLite file, or the PostgreSQL
database of a scale-out), so ``create`` may add a key to any account, existing or new, with no
per-account cap: that is what registration over the API cannot do (docs/security.md).
"""

from __future__ import annotations

import argparse
import datetime
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from purpleflea.server.keys import KeyStore


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("keys", help="create, list and revoke API keys")
    _where(parser, defaults=True)
    # The same flags after the action (`keys create --data-dir X`), as every command takes them.
    common = argparse.ArgumentParser(add_help=False)
    _where(common, defaults=False)
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    create = actions.add_parser(
        "create",
        parents=[common],
        help="issue a new key (printed once) for a new or existing account",
    )
    create.add_argument(
        "--account", default="local", help="account the key belongs to (created if new)"
    )
    create.add_argument("--name", default="default", help="a label for the key")
    listing = actions.add_parser("list", parents=[common], help="list keys (never their values)")
    listing.add_argument("--account", help="only this account's keys")
    revoke = actions.add_parser(
        "revoke", parents=[common], help="revoke a key; its open streams close"
    )
    revoke.add_argument(
        "key_id",
        help="the key's id (see `keys list`); one that starts with '-' (made before 2026-12-06) "
        "after '--': keys revoke -- -xaXb7fO",
    )
    parser.set_defaults(run=run)


def _where(parser: argparse.ArgumentParser, *, defaults: bool) -> None:
    """``--data-dir`` and ``--store``; without ``defaults`` (an action's), unset keeps the
    command's value."""
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=Path("data") if defaults else argparse.SUPPRESS,
        help="the server's data folder",
    )
    parser.add_argument(
        "--store",
        metavar="URL",
        default=None if defaults else argparse.SUPPRESS,
        help="the servers' PostgreSQL store (postgresql://...) when they run on several "
        "machines: keys live there (default: the SQLite key file in --data-dir)",
    )


def _when(ms: int | None) -> str:
    if ms is None:
        return "-"
    return datetime.datetime.fromtimestamp(ms / 1000, datetime.UTC).strftime("%Y-%m-%d %H:%M")


def run(args: argparse.Namespace) -> int:
    from purpleflea.formatting import printable  # noqa: PLC0415
    from purpleflea.local_server import postgres_keys  # noqa: PLC0415
    from purpleflea.server.config import ServerConfig  # noqa: PLC0415
    from purpleflea.server.keys import open_key_store  # noqa: PLC0415

    try:
        config = ServerConfig(data_dir=args.data_dir, store_url=args.store)
    except ValueError as exc:  # a store URL PostgreSQL would misread (its password masked)
        raise SystemExit(f"purpleflea keys: {exc}") from None
    elsewhere = postgres_keys(args.data_dir) if args.store is None else None
    if elsewhere is not None:
        url, where = elsewhere
        raise SystemExit(
            f"purpleflea keys: the server running on {args.data_dir} ({url}) keeps its keys in "
            f"PostgreSQL, not in this folder: pass its store, --store '{where}' (with the "
            "password)"
        )
    # The SQLite key file is made on first open: a mistyped --data-dir, or a command run in
    # another folder than the server's, would list an empty store or mint a key no running
    # server accepts. (A PostgreSQL store is shared by every node: nothing to tell.)
    fresh = args.store is None and not config.keys_path.exists()
    if fresh and args.action != "create":
        raise SystemExit(
            f"purpleflea keys: no key store in {args.data_dir} (no {config.keys_path.name}): "
            "is the server's data folder elsewhere? pass it with --data-dir"
        )
    if fresh:
        print(
            f"purpleflea keys: started a new key store, {config.keys_path}: only a server run "
            f"with --data-dir {args.data_dir} and no PostgreSQL --store accepts this key",
            file=sys.stderr,
        )
    try:
        store = open_key_store(config.store, config.keys_path)
    except ConnectionError as exc:
        raise SystemExit(f"purpleflea keys: {exc}") from None
    try:
        if args.action == "create":
            try:
                new = store.create(args.account, args.name)
            except ValueError as exc:  # an empty, too long or unprintable name
                raise SystemExit(f"purpleflea keys: {exc}") from None
            # The key alone on stdout, the note on stderr: `KEY=$(purpleflea keys create ...)`
            # took both lines, a key every client refused.
            print(new.key, flush=True)
            print(
                f"key_id {new.info.key_id} for account {new.info.account!r}: store the key now, "
                "it is kept only as a hash",
                file=sys.stderr,
                flush=True,
            )
        elif args.action == "list":
            keys = store.list_keys(args.account)
            print(f"{'KEY_ID':10} {'ACCOUNT':20} {'NAME':16} {'CREATED (UTC)':17} REVOKED (UTC)")
            for info in keys:
                # Escaped: names stored before they had to be printable may hold a terminal's
                # control sequences.
                account, name = printable(info.account), printable(info.name)
                print(
                    f"{info.key_id:10} {account[:20]:20} {name[:16]:16} "
                    f"{_when(info.created_at):17} {_when(info.revoked_at)}"
                )
        else:
            return _revoke(store, args.key_id)
    finally:
        store.close()
    return 0


def _revoke(store: KeyStore, key_id: str) -> int:
    revocation = store.revoke(key_id)
    if revocation is None:
        print(f"purpleflea keys: no key {key_id!r}", file=sys.stderr)
        return 1
    if revocation.already:
        # A repeat (a script retrying) is no failure: the key is revoked.
        print(f"{key_id} was already revoked, at {_when(revocation.revoked_at)} UTC")
    else:
        print(f"revoked {key_id}; a running server closes its streams within a second")
    return 0
