"""``purpleflea mcp``: the agent tools as an MCP server on stdin/stdout."""

from __future__ import annotations

import argparse
import sys

from purpleflea.commands.connect import add_connection_args, server_url
from purpleflea.stopping import ending_at_once


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "mcp",
        help="run the MCP server (stdio) for LLM agents",
        description=(
            "Serve the agent tools (recent_liquidations, cascades, heatmap_clusters, "
            "market_stats, market_summary) over MCP on stdin/stdout, answering from a Purple "
            "Flea server. Point an MCP host at this command (see docs/agents.md)."
        ),
    )
    add_arguments(parser)
    parser.set_defaults(run=run)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    # The server is found as the other client commands find it (commands/connect.py).
    add_connection_args(parser)


def run(args: argparse.Namespace) -> int:
    # The MCP SDK (pydantic and friends) loads only when this command runs.
    from purpleflea.client._config import resolve_key  # noqa: PLC0415
    from purpleflea.mcp.answers import NO_KEY  # noqa: PLC0415
    from purpleflea.mcp.server import serve  # noqa: PLC0415

    try:
        url, origin = server_url(args)
    except ValueError as exc:  # the host shows this line; a traceback says less
        print(f"purpleflea mcp: {exc}", file=sys.stderr)
        return 2
    if resolve_key(args.api_key) is None:
        # The host shows this in its server log; every tool call answers NO_KEY meanwhile.
        print(f"purpleflea mcp: {NO_KEY}", file=sys.stderr)
    # Not given (--url, $PURPLEFLEA_URL): the data folder's record, followed, also when there
    # is none yet (an MCP host launches this before the server, which records itself later).
    recorded = None if origin in ("--url", "$PURPLEFLEA_URL") else args.data_dir
    with ending_at_once("mcp"):  # it keeps nothing: a signal ends it at once
        serve(url, args.api_key, recorded_in=recorded)
    return 0
