"""A server that takes the connection and never answers (stopped, overloaded) is a tool error
the agent can act on: the SDK's wording, "retry, or pass a larger timeout=", named a Python
argument an agent has no way to pass (and ``purpleflea mcp`` has no such flag)."""

from __future__ import annotations

import socket
import time

from mcp import Client

from purpleflea.client import LiquidationClient
from purpleflea.mcp.server import build_server
from tests.agents.test_mcp import _text


async def test_a_server_that_never_answers_is_a_tool_error_saying_what_an_agent_can_do() -> None:
    with socket.socket() as silent:  # listens (the kernel accepts), never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        async with Client(build_server(LiquidationClient("pf_x", url, timeout=0.5))) as client:
            began = time.monotonic()
            answer = await client.call_tool("market_summary", {"window_minutes": "6h"})
            took = time.monotonic() - began
    assert answer.is_error
    text = _text(answer)
    assert f"the Purple Flea server at {url} did not answer within 0.5 s (ReadTimeout)" in text
    assert "timeout=" not in text
    assert text.endswith(
        "it may be overloaded or the question large: retry in a moment, or ask for less "
        "(a shorter window_minutes, a lower limit)"
    )
    assert took < 5  # the first request's timeout ends the call: no request after it
