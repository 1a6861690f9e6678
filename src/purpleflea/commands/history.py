"""``purpleflea history``: stored liquidations with filters, newest first."""

from __future__ import annotations

import argparse
import sys

from purpleflea.clock import now_ms, utc_iso
from purpleflea.commands.connect import add_connection_args, run_client
from purpleflea.commands.tail import (
    MIN_USD_HELP,
    SIDE_HELP,
    event_count,
    format_event,
    position_side,
    usd_amount,
)
from purpleflea.commands.when import TIME_HELP, time_arg
from purpleflea.formatting import printable_json
from purpleflea.model import Liquidation, encode


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("history", help="query stored liquidations")
    add_connection_args(parser)
    parser.add_argument("--market", action="append", help="market, e.g. BTC-PERP (repeatable)")
    parser.add_argument("--exchange", action="append", help="exchange id (repeatable)")
    parser.add_argument("--side", type=position_side, action="append", help=SIDE_HELP)
    parser.add_argument("--min-usd", type=usd_amount, help=MIN_USD_HELP)
    parser.add_argument("--start", type=time_arg, help=TIME_HELP)
    parser.add_argument("--end", type=time_arg, help=TIME_HELP)
    parser.add_argument(
        "--limit", type=event_count(1), default=50, help="how many events, any number (default 50)"
    )
    parser.add_argument("--json", action="store_true", help="one JSON object per line")
    parser.set_defaults(run=run)


async def _history(args: argparse.Namespace, url: str | None) -> int:
    from purpleflea.client import LiquidationClient  # noqa: PLC0415
    from purpleflea.client.seen import typo_markets  # noqa: PLC0415

    unseen: list[str] = []
    async with LiquidationClient(api_key=args.api_key, base_url=url) as client:
        shown = 0
        async for event in client.history_all(
            markets=args.market,
            exchanges=args.exchange,
            sides=args.side,
            min_usd=args.min_usd,
            start=args.start,
            end=args.end,
            limit=min(args.limit, 1000),
        ):
            if args.json:
                sys.stdout.write(json_line(event) + "\n")
            else:
                print(format_event(event, color=False, date=True))
            shown += 1
            if shown >= args.limit:
                break
        if not shown:  # a market no event names is most likely a typo, not a quiet market
            unseen = await typo_markets(client, args.market)
    if not shown:  # an empty output would leave the reader guessing why
        future = args.start is not None and args.start > now_ms()
        why = ": the start is in the future" if future else ""
        if unseen:
            why += (
                f"; no liquidation of {', '.join(unseen)} is stored at all, in any window (a "
                "typo? `purpleflea history` without --market shows the latest markets)"
            )
        print(
            f"purpleflea history: no stored liquidations match{_filters(args)}{why}",
            file=sys.stderr,
        )
    return 0


def json_line(event: Liquidation) -> str:
    """``--json``'s line for ``event``: its JSON with every character that is not printable
    escaped. A server chose the names (a hostile one, or a store written before the names
    check) and the encoder leaves all but the C0 controls as they are: a right-to-left
    override or a C1 control reached the terminal."""
    return printable_json(encode(event).decode())


def _filters(args: argparse.Namespace) -> str:
    """`` (market BTC-PERP, min_usd 1,000)``: the filters given, for the empty answer."""
    given = [
        *(f"market {m}" for m in args.market or ()),
        *(f"exchange {e}" for e in args.exchange or ()),
        *(f"side {s}" for s in args.side or ()),
        *([f"min_usd {args.min_usd:,.0f}"] if args.min_usd else []),
        # As a UTC time: the ms a --start of "2030-01-01" or "6h" became are not what was typed.
        *([f"start {utc_iso(args.start)}"] if args.start is not None else []),
        *([f"end {utc_iso(args.end)}"] if args.end is not None else []),
    ]
    return f" ({', '.join(given)})" if given else ""


def run(args: argparse.Namespace) -> int:
    return run_client("history", args, lambda url: _history(args, url))
