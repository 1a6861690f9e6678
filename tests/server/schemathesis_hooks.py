"""schemathesis hooks: the rules the OpenAPI document states in words because JSON Schema cannot
relate two parameters. A schema-valid case that breaks one is not generated as "valid" data,
since the document says it is answered 400; every other check still sees every case.

Loaded by ``schemathesis.toml`` (beside this file) when test_openapi.py runs schemathesis.
"""

from __future__ import annotations

import math
import time
import uuid

import httpx
import schemathesis

from purpleflea.engine.heatmap import MAX_BUCKETS
from purpleflea.server.api import MAX_FINE_SPAN_MS


def _number(query: dict[str, object], name: str) -> float | None:
    value = query.get(name)
    if value is None:
        return None
    try:
        return float(str(value))
    except ValueError:
        return math.nan


def window_ok(query: dict[str, object]) -> bool:
    """History, aggregates and coverage: with both, ``end`` must be greater than ``start``."""
    start, end = _number(query, "start"), _number(query, "end")
    return start is None or end is None or end > start


def history_ok(query: dict[str, object]) -> bool:
    """History: :func:`window_ok`, and a cursor of the page's order: '<ts>_<seq>' with
    ``order=ts``, an integer otherwise (the document says which is which)."""
    cursor = query.get("cursor")
    by_time = query.get("order") == "ts"
    return window_ok(query) and (cursor is None or ("_" in str(cursor)) == by_time)


def aggregate_ok(query: dict[str, object]) -> bool:
    """Aggregates: :func:`window_ok`, and a window of at most 7 days when the aggregate reads
    every event (``min_usd`` above 0) or every minute (``interval=1m``)."""
    if not window_ok(query):
        return False
    fine = (_number(query, "min_usd") or 0) > 0 or query.get("interval") == "1m"
    start = _number(query, "start")
    if not fine or start is None:
        return True
    end = _number(query, "end")
    return (time.time() * 1000 if end is None else end) - start <= MAX_FINE_SPAN_MS


def names_ok(case: schemathesis.Case) -> bool:
    """Keys: an account or key name must be printable (no control or format character)."""
    body = case.body if isinstance(case.body, dict) else {}
    return all(
        not isinstance(body.get(name), str) or body[name].isprintable()
        for name in ("account", "name")
    )


def heatmap_range_ok(query: dict[str, object]) -> bool:
    """Heatmap: ``low`` below ``high``, and at most MAX_BUCKETS buckets between them. Where
    either end is left to its default the range depends on the market's mark, so only the
    all-default case and the fully given one are known to be valid."""
    low, high, bucket = (_number(query, name) for name in ("low", "high", "bucket"))
    if low is None and high is None:
        return bucket is None
    if low is None or high is None or not low < high:
        return False
    # A margin for the server's rounding of the bucket count.
    return bucket is None or (high - low) / bucket < MAX_BUCKETS * 0.99


def resume_ok(case: schemathesis.Case) -> bool:
    """SSE: a resume point (since_seq, else Last-Event-ID) at most the server's last seq;
    the document says a later one is answered 400 naming the last seq."""
    query, headers = dict(case.query or {}), dict(case.headers or {})
    point = _number(query, "since_seq")
    if point is None:
        point = _number(headers, "Last-Event-ID") if headers.get("Last-Event-ID") else None
    if point is None:
        return True
    health = case.operation.schema.get_base_url().rstrip("/") + "/v1/health"
    last_seq = httpx.get(health, timeout=10).json()["last_seq"]
    return bool(point <= last_seq)


_RULES = {
    "/v1/liquidations": history_ok,
    "/v1/liquidations/aggregate": aggregate_ok,
    "/v1/coverage": window_ok,
    "/v1/heatmap/{market}": heatmap_range_ok,
}
_CASE_RULES = {"/v1/stream/sse": resume_ok, "/v1/keys": names_ok}


@schemathesis.hook
def filter_case(context: schemathesis.HookContext, case: schemathesis.Case) -> bool:
    meta = case.meta
    if meta is None or not meta.generation.mode.is_positive:
        return True
    rule = _RULES.get(case.operation.path)
    if rule is not None and not rule(dict(case.query or {})):
        return False
    case_rule = _CASE_RULES.get(case.operation.path)
    return case_rule is None or case_rule(case)


@schemathesis.auth()
class FreshKey:
    """The fuzzer's API key: a key of a new account, registered through the API.

    The fuzzer revokes keys it has seen (DELETE /v1/keys/{key_id} with an id from a listing),
    its own included; on a 401 schemathesis drops the cached key and asks for another, so the
    rest of the run is still authenticated.
    """

    def get(self, case: schemathesis.Case, context: schemathesis.AuthContext) -> str:
        url = case.operation.schema.get_base_url().rstrip("/") + "/v1/keys"
        response = httpx.post(url, json={"account": f"fuzzer-{uuid.uuid4().hex}"}, timeout=10)
        response.raise_for_status()
        key: str = response.json()["key"]
        return key

    def set(self, case: schemathesis.Case, data: str, context: schemathesis.AuthContext) -> None:
        case.headers = {**(case.headers or {}), "Authorization": f"Bearer {data}"}
