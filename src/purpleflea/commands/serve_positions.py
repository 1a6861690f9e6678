"""``purpleflea serve`` options of position sampling (the measured heatmap)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from purpleflea.server.measured import PositionSettings

_DEFAULT_BUDGET = 300  # SamplerConfig's default; not imported so --help stays light


def add_position_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("measured heatmap (docs/heatmap.md)")
    group.add_argument(
        "--sample-positions",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="sample account positions where a venue publishes them, for "
        "GET /v1/heatmap/{market}?source=measured (default: on for --source sim, where each "
        "venue's share of the simulated market is served on loopback in its own protocol; "
        "off for the live venues)",
    )
    group.add_argument(
        "--sample-budget",
        type=int,
        default=_DEFAULT_BUDGET,
        help=f"position polls per minute (default {_DEFAULT_BUDGET}; refused beyond the "
        "venue's documented allowance)",
    )
    group.add_argument(
        "--sample-coins",
        default="BTC,ETH",
        help="coins whose trades name the accounts to sample (default BTC,ETH)",
    )
    group.add_argument(
        "--sample-node-fills",
        type=Path,
        metavar="DIR",
        help="the fill output folder of your own node of the sampled venue (node_fills): its "
        "liquidations are published, and the sampler's only where the node has none",
    )
    group.add_argument("--sample-info-url", help="replace the venue's info endpoint (a fake)")
    group.add_argument("--sample-ws-url", help="replace the venue's websocket (a fake)")


def position_settings(args: argparse.Namespace, source: str) -> PositionSettings | None:
    simulated = source == "sim" and args.sample_info_url is None and args.sample_ws_url is None
    wanted = args.sample_positions if args.sample_positions is not None else simulated
    if not wanted:
        return None
    from purpleflea.server.measured import PositionSettings  # noqa: PLC0415

    coins = tuple(coin.strip() for coin in args.sample_coins.split(",") if coin.strip())
    if not coins:
        raise SystemExit("purpleflea serve: --sample-coins names no coin")
    return PositionSettings(
        budget_per_minute=args.sample_budget,
        coins=coins,
        info_url=args.sample_info_url,
        ws_url=args.sample_ws_url,
        simulated=simulated,
        node_fills=args.sample_node_fills,
    )
