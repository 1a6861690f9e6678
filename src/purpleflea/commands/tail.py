"""``purpleflea tail``: a live, colored terminal feed like the product page's preview."""

from __future__ import annotations

import argparse
import asyncio
import datetime
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from purpleflea.commands.connect import add_connection_args, run_client
from purpleflea.formatting import format_price, format_usd_exact, printable, read_usd
from purpleflea.local_server import FILE_NAME, find_address
from purpleflea.model import CascadeAlert, Liquidation, order_side_hint

if TYPE_CHECKING:
    from purpleflea.client import LiquidationClient

_RED, _GREEN, _BOLD, _DIM, _RESET = "\033[31m", "\033[32m", "\033[1m", "\033[2m", "\033[0m"


def event_count(least: int) -> Callable[[str], int]:
    """An argparse type: a whole number of events, ``least`` or more (``history --limit``:
    1, fetched in pages of up to 1,000; ``tail --count``: 0, which never stops)."""

    def parse(text: str) -> int:
        count = int(text) if text.strip().isdigit() else -1
        if count < least:
            raise argparse.ArgumentTypeError(
                f"must be a whole number of events, {least} or more, got {text!r}"
            )
        return count

    return parse


#: ``--min-usd``'s help, the same for every command that filters on it.
MIN_USD_HELP = "only events of at least this many USD: 100000, 1e5, $100k, 1.5M"


def usd_amount(text: str) -> float:
    """An argparse type: ``--min-usd`` as :func:`~purpleflea.formatting.read_usd` reads it
    (the MCP tools' rule), 0 or more. ``100k`` was refused as "invalid float value", naming
    no form that is taken, and ``-5`` or ``nan`` went to the server."""
    try:
        amount = read_usd(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
    if amount < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more USD, got {text!r}")
    return amount


#: ``--side``'s help, the same for every command that filters on it.
SIDE_HELP = "liquidated position: long or short, any case (repeatable)"


def position_side(text: str) -> str:
    """An argparse type: the liquidated position's side, ``long`` or ``short`` in any case; an
    order side (``buy``/``sell``) is refused saying which position it closes, as the server
    refuses it for every client."""
    side = text.strip().lower()
    if side not in ("long", "short"):
        raise argparse.ArgumentTypeError(
            f"must be long or short, got {text!r}{order_side_hint([text])}"
        )
    return side


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("tail", help="live feed of liquidations in the terminal")
    add_connection_args(parser)
    parser.add_argument("--min-usd", type=usd_amount, default=0.0, help=MIN_USD_HELP)
    parser.add_argument("--market", action="append", help="market, e.g. BTC-PERP (repeatable)")
    parser.add_argument("--exchange", action="append", help="exchange id (repeatable)")
    parser.add_argument("--side", type=position_side, action="append", help=SIDE_HELP)
    parser.add_argument("--no-cascades", action="store_true", help="hide cascade alerts")
    parser.add_argument(
        "--color", choices=("auto", "always", "never"), default="auto", help="ANSI colors"
    )
    parser.add_argument(
        "--count",
        type=event_count(0),
        default=0,
        help="exit after this many events (default 0: never)",
    )
    parser.set_defaults(run=run)


def use_color(choice: str) -> bool:
    """``--color always|never|auto``: auto means a terminal, unless NO_COLOR is set."""
    return choice == "always" or (
        choice == "auto" and sys.stdout.isatty() and not os.environ.get("NO_COLOR")
    )


def format_event(event: Liquidation, *, color: bool, date: bool = False) -> str:
    """``LONG LIQ  BTC-PERP  $2,140,000  @ 43,210.50  <exchange>  Cascade: 9/10`` after the
    event's UTC time of day (``date``: and its date and zone, for stored history; ``tail``'s
    first line says its times are UTC)."""
    shape = "%Y-%m-%d %H:%M:%S UTC" if date else "%H:%M:%S"
    when = datetime.datetime.fromtimestamp(event.ts / 1000, datetime.UTC).strftime(shape)
    label = f"{event.side.upper()} LIQ"
    price = format_price(event.price)
    size = format_usd_exact(event.size_usd)
    # Escaped: the server chose them, and a hostile one (or one impersonated over plain http)
    # sent a terminal's control sequences (retitle, clear the screen, overwrite the line).
    market, exchange = printable(event.market), printable(event.exchange)
    line = (
        f"{when}  {label:9} {market:14} {size:>14}  @ {price:>12}  "
        f"{exchange:14} Cascade: {event.cascade_score}/10"
    )
    if not color:
        return line
    hue = _RED if event.side == "long" else _GREEN
    weight = _BOLD if event.cascade_score >= 7 else ""
    return f"{weight}{hue}{line}{_RESET}"


def format_alert(alert: CascadeAlert, *, color: bool) -> str:
    line = f"CASCADE {alert.status.upper():9} {printable(alert.message)}"
    return f"{_BOLD}{line}{_RESET}" if color else line


#: How often ``tail`` reads the server's address record, when that is where it found it.
FOLLOW_EVERY_S = 1.0


async def _follow_record(client: LiquidationClient, data_dir: Path) -> None:
    """Keep ``client`` on the server recorded in ``data_dir``: one restarted on another port
    (``serve --port 0`` takes a new one each time) records its new address, and the stream's
    reconnections went on asking the old one for good."""
    while True:
        await asyncio.sleep(FOLLOW_EVERY_S)
        found = find_address(data_dir)
        if found is not None and found.rstrip("/") != client.servers[0]:
            client.servers = (found.rstrip("/"),)
            print(
                f"purpleflea tail: the server recorded in {data_dir / FILE_NAME} is now at "
                f"{found}; following it",
                file=sys.stderr,
                flush=True,
            )


async def _tail(args: argparse.Namespace, url: str | None, color: bool) -> int:
    from purpleflea.client import LiquidationClient  # noqa: PLC0415

    client = LiquidationClient(api_key=args.api_key, base_url=url)
    channels = ["liquidations"] if args.no_cascades else ["liquidations", "cascades"]
    follow = None
    if url is not None and not args.url:  # found in the address record (connect.server_url)
        follow = asyncio.create_task(_follow_record(client, args.data_dir))
    try:
        return await _show(args, client, channels, color)
    finally:
        if follow is not None:
            follow.cancel()


async def _show(
    args: argparse.Namespace, client: LiquidationClient, channels: list[str], color: bool
) -> int:
    seen = 0
    async with client.stream(
        min_usd=args.min_usd,
        markets=args.market,
        exchanges=args.exchange,
        sides=args.side,
        channels=channels,
    ) as stream:
        # Subscribed: a quiet market must not look like a stuck command.
        waiting = _waiting(args, client.base_url, stream.filters)
        print(f"purpleflea tail: {waiting}", file=sys.stderr, flush=True)
        why = await _why_none_yet(client.base_url)
        if why:
            print(
                f"purpleflea tail: no liquidation yet: {printable(why)}",
                file=sys.stderr,
                flush=True,
            )
        unseen = await _typos(client, args.market)
        if unseen:  # it would wait for ever, silently, on a misspelt market
            print(
                f"purpleflea tail: no liquidation of {printable(', '.join(unseen))} is stored at "
                "all, in any window (a typo? `purpleflea tail` without --market shows every "
                "market)",
                file=sys.stderr,
                flush=True,
            )
        async for item in stream:
            if isinstance(item, Liquidation):
                print(format_event(item, color=color), flush=True)
                seen += 1
                if args.count and seen >= args.count:
                    return 0
            else:
                print(format_alert(item, color=color), flush=True)
    return 0


async def _typos(client: LiquidationClient, markets: list[str] | None) -> list[str]:
    """The markets given that no stored liquidation names (best effort: the stream is what
    the command is for)."""
    from purpleflea.client import PurpleFleaError  # noqa: PLC0415
    from purpleflea.client.seen import typo_markets  # noqa: PLC0415

    try:
        return await typo_markets(client, markets)
    except PurpleFleaError:
        return []


async def _why_none_yet(url: str) -> str:
    """What the server says its source is doing while it has stored no liquidation
    (``/v1/health``'s ``source_status.message``: a simulator warming up, how far), or "".
    Best effort: the stream is what the command is for."""
    import httpx  # noqa: PLC0415 - loaded with the SDK

    try:
        async with httpx.AsyncClient(timeout=2.0) as http:
            status = (await http.get(url.rstrip("/") + "/v1/health")).json().get("source_status")
    except (httpx.HTTPError, ValueError, AttributeError):
        return ""
    message = status.get("message") if isinstance(status, dict) else None
    return message if isinstance(message, str) else ""


def _waiting(args: argparse.Namespace, url: str, filters: dict[str, Any]) -> str:
    """``connected to URL; waiting for liquidations of BTC-PERP of $250,000 or more, ...``;
    exchanges as the server's ``filters`` name them (given in capitals, they read as their ids)."""
    parts = ["liquidations"]
    if args.market:
        parts.append("of " + ", ".join(market.upper() for market in args.market))
    if args.exchange:
        # Escaped, as every other text the server chose: this line went out raw (and a list
        # of anything but names raised a traceback).
        named = filters.get("exchanges")
        exchanges = [str(e) for e in named] if isinstance(named, list) and named else args.exchange
        parts.append("on " + printable(", ".join(exchanges)))
    if args.side:
        parts.append("of " + " and ".join(args.side) + " positions")
    if args.min_usd:
        parts.append(f"of {format_usd_exact(args.min_usd)} or more")
    cascades = "" if args.no_cascades else ", and cascade alerts"
    return f"connected to {url}; waiting for {' '.join(parts)}{cascades} (times UTC; Ctrl-C stops)"


def run(args: argparse.Namespace) -> int:
    color = use_color(args.color)
    return run_client("tail", args, lambda url: _tail(args, url, color))
