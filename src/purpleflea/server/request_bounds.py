"""How much of a request the server reads for anyone, before any key is checked.

uvicorn bounds a request's head only while it arrives in pieces (h11's 16 KiB limit on an
incomplete event): a head sent in one write of up to 64 KiB is parsed whole, then its query
parsed once per reader (the unknown-parameter check, the route, the key's lookup) and its
headers scanned by every middleware. With no key, a 63 KB query of 4,500 parameters cost
5.75 ms of server CPU a request and 3,000 headers 5 ms, where a plain `/v1/health` costs
0.2: one client asking back to back kept a core busy, and the rate limit (per account)
never saw it. The most a real client sends is below the bounds here: a filter of 500
markets (``http.strings``' own limit) is ~500 parameters.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from purpleflea.server import http

#: Query parameters a request may carry (``&``-separated parts): a filter's 500 values and
#: the route's own parameters fit.
MAX_QUERY_PARAMS = 600
#: Bytes of a query string: 600 parameters of a 64-character value each.
MAX_QUERY_BYTES = 48 * 1024


class RequestBounds:
    """Refuses a request past :data:`MAX_QUERY_PARAMS` or :data:`MAX_QUERY_BYTES` (414)
    before anything else reads it; a WebSocket so is closed before it opens (403 to its
    handshake). Header lines are bounded before h11 parses them (``serving.MAX_HEAD_LINES``)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        refusal = _refusal(scope)
        if refusal is None:
            await self.app(scope, receive, send)
            return
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008, "reason": refusal})
            return
        await http.error_response(414, "uri_too_long", refusal)(scope, receive, send)


def _refusal(scope: Scope) -> str | None:
    query: bytes = scope.get("query_string", b"")
    if len(query) > MAX_QUERY_BYTES:
        return f"query string over {MAX_QUERY_BYTES} bytes"
    if query.count(b"&") >= MAX_QUERY_PARAMS:
        return f"more than {MAX_QUERY_PARAMS} query parameters"
    return None
