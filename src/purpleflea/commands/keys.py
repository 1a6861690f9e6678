"""``purpleflea keys create|list|revoke``: the operator's key management (local key store)."""

from __future__ import annotations

import argparse
import datetime
from pathlib import Path


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("keys", help="create, list and revoke API keys")
    parser.add_argument(
        "--data-dir", type=Path, default=Path("data"), help="the server's data folder"
    )
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    create = actions.add_parser("create", help="issue a new key (printed once)")
    create.add_argument("--account", default="local", help="account the key belongs to")
    create.add_argument("--name", default="default", help="a label for the key")
    listing = actions.add_parser("list", help="list keys (never their values)")
    listing.add_argument("--account", help="only this account's keys")
    revoke = actions.add_parser("revoke", help="revoke a key; its open streams close")
    revoke.add_argument("key_id", help="the key's id (see `keys list`)")
    parser.set_defaults(run=run)


def _when(ms: int | None) -> str:
    if ms is None:
        return "-"
    return datetime.datetime.fromtimestamp(ms / 1000, datetime.UTC).strftime("%Y-%m-%d %H:%M")


def run(args: argparse.Namespace) -> int:
    from purpleflea.server.config import ServerConfig  # noqa: PLC0415
    from purpleflea.server.keys import KeyStore  # noqa: PLC0415

    store = KeyStore(ServerConfig(data_dir=args.data_dir).keys_path)
    try:
        if args.action == "create":
            new = store.create(args.account, args.name)
            print(new.key)
            print(
                f"key_id {new.info.key_id} for account {new.info.account!r}: store the key now, "
                "it is kept only as a hash",
                flush=True,
            )
        elif args.action == "list":
            keys = store.list_keys(args.account)
            print(f"{'KEY_ID':10} {'ACCOUNT':20} {'NAME':16} {'CREATED':17} REVOKED")
            for info in keys:
                print(
                    f"{info.key_id:10} {info.account[:20]:20} {info.name[:16]:16} "
                    f"{_when(info.created_at):17} {_when(info.revoked_at)}"
                )
        elif not store.revoke(args.key_id):
            print(f"no active key {args.key_id!r}")
            return 1
        else:
            print(f"revoked {args.key_id}; a running server closes its streams within a second")
    finally:
        store.close()
    return 0
