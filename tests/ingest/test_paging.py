"""Paged REST lists: read to their end, and never forever."""

from __future__ import annotations

import httpx
import pytest

from purpleflea.ingest import paging
from purpleflea.venues._paging import query_value, with_query


def _next_offset(url: str, body: bytes) -> str | None:
    del body
    return with_query(url, "offset", str(int(query_value(url, "offset") or 0) + 1))


def _client(answer: object) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.MockTransport(answer))  # type: ignore[arg-type]


async def test_an_endpoint_ignoring_the_paging_parameter_is_read_once() -> None:
    asked = []

    def same(request: httpx.Request) -> httpx.Response:
        asked.append(str(request.url))
        return httpx.Response(200, content=b"[1,2]")

    async with _client(same) as client:
        pages = await paging.fetch_pages(client, "https://x.test/l?limit=2", _next_offset)
    assert [page.content for page in pages] == [b"[1,2]"]
    assert asked == ["https://x.test/l?limit=2", "https://x.test/l?limit=2&offset=1"]


async def test_a_failed_page_ends_the_list_and_is_handed_back() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        offset = int(query_value(str(request.url), "offset") or 0)
        return httpx.Response(429 if offset == 1 else 200, content=str(offset).encode())

    async with _client(answer) as client:
        pages = await paging.fetch_pages(client, "https://x.test/l", _next_offset)
    assert [page.status_code for page in pages] == [200, 429]


async def test_an_endless_list_stops_at_the_guard(caplog: pytest.LogCaptureFixture) -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=str(request.url).encode())

    async with _client(answer) as client:
        pages = await paging.fetch_pages(client, "https://x.test/l", _next_offset)
    assert len(pages) == paging.MAX_PAGES
    assert "the rest is not read" in caplog.text


def test_query_values_are_read_and_replaced_verbatim() -> None:
    url = "https://x.test/l?limit=1000&cursor=a%3D1"
    assert query_value(url, "cursor") == "a%3D1"
    assert query_value(url, "offset") is None
    assert with_query(url, "cursor", "b%3D2") == "https://x.test/l?limit=1000&cursor=b%3D2"
