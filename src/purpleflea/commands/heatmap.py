"""``purpleflea heatmap BTC-PERP``: the liquidation heatmap drawn in the terminal."""

from __future__ import annotations

import argparse

from purpleflea.commands.connect import add_connection_args, run_client
from purpleflea.commands.tail import use_color
from purpleflea.formatting import format_usd, printable
from purpleflea.model import Heatmap
from purpleflea.positions import MeasuredMap

_RED, _GREEN, _BOLD, _RESET = "\033[31m", "\033[32m", "\033[1m", "\033[0m"


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("heatmap", help="draw a market's liquidation heatmap")
    add_connection_args(parser)
    parser.add_argument("market", help="e.g. BTC-PERP")
    parser.add_argument("--low", type=float, help="lowest price shown")
    parser.add_argument("--high", type=float, help="highest price shown")
    parser.add_argument("--bucket", type=float, help="price bucket size")
    parser.add_argument(
        "--source",
        choices=("estimated", "measured"),
        default="estimated",
        help="estimated (model from open interest) or measured (sampled positions)",
    )
    parser.add_argument(
        "--width",
        type=_bar_width,
        default=30,
        help=f"bar width per side, 1-{MAX_WIDTH} characters (default 30)",
    )
    parser.add_argument("--color", choices=("auto", "always", "never"), default="auto")
    parser.set_defaults(run=run)


#: The widest bar per side ``--width`` takes: wider floods a terminal with blank lines.
MAX_WIDTH = 500


def _bar_width(text: str) -> int:
    """``--width``: 0 or less drew a map without bars, and status 0."""
    width = int(text) if text.strip().lstrip("-").isdigit() else 0
    if not 1 <= width <= MAX_WIDTH:
        raise argparse.ArgumentTypeError(
            f"must be a whole number from 1 to {MAX_WIDTH}, got {text!r}"
        )
    return width


def render(heatmap: Heatmap | MeasuredMap, *, width: int = 30, color: bool = False) -> str:
    """Longs' notional at risk to the left of each price level, shorts' to the right, the
    highest price on top; the bucket holding the mark price is marked ``<- mark``. A measured
    map says its coverage and how many accounts it holds."""
    peak = max([*heatmap.long_usd, *heatmap.short_usd, 1e-9])
    decimals = 2 if heatmap.bucket_size >= 0.01 else 8
    lines = [
        f"{printable(heatmap.market)}  mark {heatmap.mark_price:,.{decimals}f}  "
        f"(bucket {heatmap.bucket_size:g}; longs liquidated left, shorts right)"
    ]
    rows = list(zip(heatmap.prices, heatmap.long_usd, heatmap.short_usd, strict=True))
    if rows and not any(heatmap.long_usd) and not any(heatmap.short_usd):
        top = heatmap.prices[-1] + heatmap.bucket_size
        lines.append(
            f"no position's liquidation price lies between {heatmap.prices[0]:,.{decimals}f} "
            f"and {top:,.{decimals}f} (nothing at risk in this view: the market's open interest "
            "is 0, or widen it with --low/--high)"
        )
        rows = []  # a column of "$0 | price | $0" rows says nothing more
    for price, longs, shorts in reversed(rows):
        left = "#" * round(width * longs / peak)
        right = "#" * round(width * shorts / peak)
        if color:
            left, right = f"{_RED}{left}{_RESET}", f"{_GREEN}{right}{_RESET}"
        here = price <= heatmap.mark_price < price + heatmap.bucket_size
        mark = "  <- mark" if here else ""
        pad = " " * (width - round(width * longs / peak))
        lines.append(
            f"{format_usd(longs):>9} {pad}{left}|{price:>14,.{decimals}f}|{right}"
            f"{' ' * (width - round(width * shorts / peak))} {format_usd(shorts):<9}{mark}"
        )
    if isinstance(heatmap, MeasuredMap):
        capped = (
            f" (capped; uncapped {heatmap.coverage_uncapped:.1%})"
            if heatmap.coverage_uncapped > heatmap.coverage
            else ""
        )
        lines.append(
            f"measured: {heatmap.positions} positions of {heatmap.accounts} accounts, "
            f"{format_usd(heatmap.sampled_usd)}; coverage {heatmap.coverage:.1%} of open "
            f"interest{capped}"
        )
    elif heatmap.clusters:
        lines.append("clusters:")
        for cluster in heatmap.clusters:
            label = f"  {cluster.label}"
            lines.append(f"{_BOLD}{label}{_RESET}" if color else label)
    return "\n".join(lines)


async def _heatmap(args: argparse.Namespace, url: str | None, color: bool) -> int:
    from purpleflea.client import LiquidationClient  # noqa: PLC0415

    async with LiquidationClient(api_key=args.api_key, base_url=url) as client:
        market, low, high, bucket = args.market.upper(), args.low, args.high, args.bucket
        heatmap: Heatmap | MeasuredMap
        if args.source == "measured":
            heatmap = await client.heatmap(
                market, low=low, high=high, bucket=bucket, source="measured"
            )
        else:
            heatmap = await client.heatmap(market, low=low, high=high, bucket=bucket)
    print(render(heatmap, width=args.width, color=color))
    return 0


def run(args: argparse.Namespace) -> int:
    color = use_color(args.color)
    return run_client("heatmap", args, lambda url: _heatmap(args, url, color))
