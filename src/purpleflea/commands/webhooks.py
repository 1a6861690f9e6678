"""``purpleflea webhooks create|list|delete|dead-letters|replay``: an account's webhooks,
managed through the API with its key (docs/webhooks.md)."""

from __future__ import annotations

import argparse
import datetime
import sys
from typing import Any

from purpleflea.commands.connect import add_connection_args, run_client
from purpleflea.commands.tail import MIN_USD_HELP, SIDE_HELP, position_side, usd_amount
from purpleflea.formatting import format_usd_exact, printable
from purpleflea.model import encode


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "webhooks",
        help="signed HTTP POSTs of liquidations and cascades to your URL",
        description="Manage this account's webhooks: the server POSTs every item matching the "
        "filters to the URL, signed (verify with purpleflea.verify_webhook), retried, and "
        "dead-lettered when the receiver keeps failing.",
    )
    json_help = "print the server's JSON answer"
    add_connection_args(parser)
    parser.add_argument("--json", action="store_true", help=json_help)
    # The same flags after the action (`webhooks list --url ...`), as every command takes them.
    common = argparse.ArgumentParser(add_help=False)
    add_connection_args(common, defaults=False)
    common.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help=json_help)
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    create = actions.add_parser(
        "create", parents=[common], help="add a webhook (its secret is printed once)"
    )
    create.add_argument("target", metavar="URL", help="http(s) URL to POST to")
    create.add_argument("--secret", help="HMAC key, 16-200 characters (default: generated)")
    create.add_argument(
        "--channel",
        action="append",
        choices=("liquidations", "cascades"),
        help="what to send (repeatable; default liquidations)",
    )
    create.add_argument("--min-usd", type=usd_amount, default=0.0, help=MIN_USD_HELP)
    create.add_argument("--market", action="append", help="market, e.g. BTC-PERP (repeatable)")
    create.add_argument("--exchange", action="append", help="exchange id (repeatable)")
    create.add_argument("--side", type=position_side, action="append", help=SIDE_HELP)
    actions.add_parser("list", parents=[common], help="this account's webhooks")
    delete = actions.add_parser(
        "delete", parents=[common], help="delete a webhook and its dead letters"
    )
    delete.add_argument("webhook_id")
    letters = actions.add_parser(
        "dead-letters", parents=[common], help="deliveries that failed every attempt"
    )
    letters.add_argument("webhook_id")
    letters.add_argument("--limit", type=int, default=100, help="at most this many (<= 1000)")
    replay = actions.add_parser(
        "replay", parents=[common], help="send the dead letters again, oldest first"
    )
    replay.add_argument("webhook_id")
    replay.add_argument("--limit", type=int, default=100, help="at most this many (<= 1000)")
    parser.set_defaults(run=run)


def _when(ms: int) -> str:
    return datetime.datetime.fromtimestamp(ms / 1000, datetime.UTC).strftime("%Y-%m-%d %H:%M:%S")


def _filters(filters: dict[str, Any]) -> str:
    parts = [",".join(filters.get("channels", []))]
    if filters.get("min_usd"):
        parts.append(f">={format_usd_exact(filters['min_usd'])}")
    parts += [
        ",".join(filters[k])
        for k in ("markets", "exchanges", "sides", "coverages")
        if filters.get(k)
    ]
    return " ".join(parts)


def _say(line: str) -> None:
    """One line of text output, escaped: the server chose most of it, and a dead letter's
    error quotes the receiver's answer, which anyone running the target URL chooses."""
    print(printable(line))


def _print(args: argparse.Namespace, answer: Any) -> None:
    if args.json:
        sys.stdout.write(encode(answer).decode() + "\n")
        return
    if args.action == "create":
        _say(f"webhook {answer['id']} -> {answer['url']} ({_filters(answer['filters'])})")
        _say(f"secret {answer['secret']}")
        _say("store the secret now: it is shown once; receivers verify deliveries with it")
    elif args.action == "list":
        # Each webhook's filters in full, the column as wide as the widest: cut to a width,
        # ">=$1,000,000 BTC-PERP" read as ">=$1,000" and the market was gone.
        shown = [_filters(hook["filters"]) for hook in answer]
        width = max([len("FILTERS"), *map(len, shown)])
        _say(f"{'ID':20} {'DEAD':>5} {'FILTERS':{width}} URL")
        for hook, filters in zip(answer, shown, strict=True):
            _say(f"{hook['id']:20} {hook['dead_letters']:>5} {filters:{width}} {hook['url']}")
    elif args.action == "delete":
        _say(f"deleted {args.webhook_id}")
    elif args.action == "dead-letters":
        dropped = answer["dropped"]
        full = f" ({dropped} dropped: the list was full)" if dropped else ""
        _say(f"{answer['total']} dead letters{full}")
        for letter in answer["dead_letters"]:
            frame = letter["frame"]
            _say(
                f"{letter['event_id']:>10} {_when(letter['failed_at'])} {frame['type']:11} "
                f"attempts {letter['attempts']}: {letter['error']}"
            )
    else:
        failed = answer["failed"]
        _say(
            f"delivered {answer['delivered']}, {answer['remaining']} left"
            + (f"; stopped at {failed['seq']}: {failed['error']}" if failed else "")
        )


async def _webhooks(args: argparse.Namespace, url: str | None) -> Any:
    from purpleflea.client import LiquidationClient  # noqa: PLC0415

    async with LiquidationClient(api_key=args.api_key, base_url=url) as client:
        if args.action == "create":
            return await client.create_webhook(
                args.target,
                secret=args.secret,
                channels=args.channel or ("liquidations",),
                min_usd=args.min_usd,
                markets=args.market,
                exchanges=args.exchange,
                sides=args.side,
            )
        if args.action == "list":
            return await client.webhooks()
        if args.action == "delete":
            await client.delete_webhook(args.webhook_id)
            return {"deleted": args.webhook_id}
        if args.action == "dead-letters":
            return await client.dead_letters(args.webhook_id, limit=args.limit)
        return await client.replay_dead_letters(args.webhook_id, limit=args.limit)


def run(args: argparse.Namespace) -> int:
    async def work(url: str | None) -> int:
        _print(args, await _webhooks(args, url))
        return 0

    return run_client("webhooks", args, work)
