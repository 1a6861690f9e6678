"""The SDK's :class:`~purpleflea.client.types.Bucket` and ``HistoryPage`` mirror the store's
``Bucket`` and ``Page``: the client must import nothing of the server (its base install has
none of the server's dependencies), so it cannot reuse the store's structs. These tests fail
when they drift apart."""

from __future__ import annotations

import httpx
import msgspec

from purpleflea.client import LiquidationClient
from purpleflea.client.types import Bucket as ClientBucket
from purpleflea.client.types import HistoryPage
from purpleflea.server import http
from purpleflea.store.base import Bucket as StoreBucket
from purpleflea.store.base import Page

# The fields the SDK fills in when an older server (before the throttled-feed estimate)
# leaves them out; the server itself always sends them.
OLDER_SERVERS_OMIT = {"est_count": 0, "est_size_usd": 0.0, "est_calibration": ""}


def _fields(cls: type[msgspec.Struct]) -> list[tuple[str, object]]:
    return [(f.name, f.type) for f in msgspec.structs.fields(cls)]


def _defaults(cls: type[msgspec.Struct]) -> dict[str, object]:
    return {
        f.name: f.default for f in msgspec.structs.fields(cls) if f.default is not msgspec.NODEFAULT
    }


def test_same_field_names_types_and_order() -> None:
    assert _fields(ClientBucket) == _fields(StoreBucket)
    assert _fields(HistoryPage) == _fields(Page)


def test_defaults_only_where_an_older_server_omits_a_field() -> None:
    assert _defaults(StoreBucket) == {}  # every field is always encoded
    assert _defaults(ClientBucket) == OLDER_SERVERS_OMIT
    assert _defaults(Page) == _defaults(HistoryPage) == {}


async def test_a_server_encoded_bucket_decodes_into_the_clients() -> None:
    row = StoreBucket(
        start_ms=1_700_000_000_000,
        group="BTC-PERP",
        count=3,
        size_usd=1_250_000.5,
        long_usd=1_000_000.0,
        short_usd=250_000.5,
        est_count=5,
        est_size_usd=2_000_000.25,
        est_calibration="complete_venues",
    )
    older = {f: v for f, v in msgspec.to_builtins(row).items() if f not in OLDER_SERVERS_OMIT}
    # What the aggregate route answers (server/api.py), read by the SDK's own request code.
    body = http.json_response({"interval": "1h", "group_by": "market", "buckets": [row, older]})
    client = LiquidationClient("k", "http://server")
    client._http = httpx.AsyncClient(
        transport=httpx.MockTransport(lambda _: httpx.Response(200, content=bytes(body.body)))
    )
    try:
        got = await client.aggregate()
    finally:
        await client.aclose()
    assert got[0] == ClientBucket(**msgspec.structs.asdict(row))
    assert got[1] == ClientBucket(**older, **OLDER_SERVERS_OMIT)  # type: ignore[arg-type]
