"""``purpleflea mcp``: the agent tools as an MCP server on stdin/stdout."""

from __future__ import annotations

import argparse


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
    parser.add_argument(
        "--url", help="Purple Flea server (default $PURPLEFLEA_URL, else http://127.0.0.1:8000)"
    )
    parser.add_argument("--api-key", help="API key (default $PURPLEFLEA_API_KEY)")


def run(args: argparse.Namespace) -> int:
    # The MCP SDK (pydantic and friends) loads only when this command runs.
    from purpleflea.mcp_server import serve  # noqa: PLC0415

    serve(args.url, args.api_key)
    return 0
