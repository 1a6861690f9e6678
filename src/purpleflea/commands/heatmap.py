"""``purpleflea heatmap BTC-PERP``: the liquidation heatmap drawn in the terminal."""

from __future__ import annotations

import argparse
import bisect
from collections.abc import Sequence

from purpleflea.commands.connect import add_connection_args, run_client
from purpleflea.commands.tail import use_color
from purpleflea.formatting import format_price, format_usd, printable, step_decimals
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
    # Every level written with the bucket's own digits: a fixed 2 (or 8) wrote 5.075 as 5.08
    # and a coin at $0.0000000019 as 0.00000000 on every row.
    decimals = step_decimals(heatmap.bucket_size, least=2)
    lines = [
        f"{printable(heatmap.market)}  mark {format_price(heatmap.mark_price)}  "
        f"(bucket {format_price(heatmap.bucket_size).rstrip('0').rstrip('.')}; "
        "longs liquidated left, shorts right)"
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
    marked = _mark_row(heatmap.prices, heatmap.mark_price, heatmap.bucket_size) if rows else -1
    for index, (price, longs, shorts) in reversed(list(enumerate(rows))):
        left = "#" * round(width * longs / peak)
        right = "#" * round(width * shorts / peak)
        if color:
            left, right = f"{_RED}{left}{_RESET}", f"{_GREEN}{right}{_RESET}"
        mark = "  <- mark" if index == marked else ""
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


def _mark_row(prices: Sequence[float], mark: float, bucket: float) -> int:
    """The one row whose bucket holds ``mark`` (-1: none shown). Edges are floats (``bottom +
    i * bucket``): a mark on an edge sat in two rows' ``[price, price + bucket)`` at once, and
    one a rounding below an edge belongs to the level written as that edge."""
    below = bisect.bisect_right(prices, mark + bucket * 1e-9) - 1
    return below if below >= 0 and mark < prices[below] + bucket else -1


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
