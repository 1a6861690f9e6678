"""A query parameter a route does not take is refused (400), never silently ignored.

Ignoring it answers as if no filter were given: ``/v1/liquidations?markets=BTC-PERP`` (the
stream's and the SDK's spelling, where the REST route's is ``market``) returned every market.
The names each operation takes come from the OpenAPI document, their one owner; operations
that document no 400 answer are left alone (the document promises them no such refusal).
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qsl

from purpleflea.server.filters import LIST_FIELDS

#: The key in the query string (``?api_key=``), for browsers: taken by every operation that
#: accepts a key there (the ``apiKeyQuery`` scheme).
_KEY_PARAM = "api_key"


class Operation:
    """The query parameters one operation (a path template and a method) takes."""

    def __init__(self, template: str, method: str, names: frozenset[str]) -> None:
        self.path = re.compile(re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(template)))
        self.method = method
        self.names = names

    def unknown(self, query: bytes) -> list[str]:
        given = {name for name, _ in parse_qsl(query.decode("latin-1"), keep_blank_values=True)}
        return sorted(given - self.names)


#: Paths whose handler refuses unknown parameters itself, with its own error code: the SSE
#: stream's filters are the subscribe message's (``bad_subscription``, server/filters.py).
SELF_CHECKED = frozenset({"/v1/stream/sse"})


def operations(spec: dict[str, Any]) -> list[Operation]:
    """The operations of an OpenAPI document that document a 400 answer (but
    :data:`SELF_CHECKED`)."""
    found = []
    for template, methods in spec.get("paths", {}).items():
        if template in SELF_CHECKED:
            continue
        for method, operation in methods.items():
            if not isinstance(operation, dict) or "400" not in operation.get("responses", {}):
                continue
            names = {p["name"] for p in operation.get("parameters", []) if p["in"] == "query"}
            if any("apiKeyQuery" in scheme for scheme in operation.get("security", [])):
                names.add(_KEY_PARAM)
            found.append(Operation(template, method.upper(), frozenset(names)))
    return found


class QueryCheck:
    """Finds the query parameters a request names that its operation does not take. The key
    is checked first (``Api.authed`` asks after it): a bad key is a 401 whatever the query."""

    def __init__(self, spec: dict[str, Any]) -> None:
        self.operations = operations(spec)

    def refusal(self, method: str, path: str, query: bytes) -> str | None:
        """The error message for this request (naming the unknown parameters and the ones the
        operation takes), None when its parameters are all known."""
        if not query:
            return None
        method = "GET" if method == "HEAD" else method
        for operation in self.operations:
            if operation.method == method and operation.path.fullmatch(path):
                unknown = operation.unknown(query)
                if not unknown:
                    return None
                takes = ", ".join(sorted(operation.names)) or "none"
                return (
                    f"unknown query parameter(s) {', '.join(map(repr, unknown))} for "
                    f"{method} {path}; it takes: {takes} (see /openapi.json)"
                    f"{_plural_hint(unknown, operation.names)}"
                )
        return None


def _plural_hint(unknown: list[str], names: frozenset[str]) -> str:
    """For the stream's and the SDK's plural names (``markets``) where the route takes the
    singular (``market``): which one to send. Only the stream's list filters: ``limits``
    is no spelling of the stream's."""
    plural = [name for name in unknown if name in LIST_FIELDS and name[:-1] in names]
    if not plural:
        return ""
    singular = ", ".join(name[:-1] for name in plural)
    return f"; {', '.join(plural)} is the stream's spelling: this route takes {singular}"
