"""Reads a paged REST list page by page: the venue's ``next_page`` says where the next one is.

Used by the instrument catalogs and the open-interest pollers, so an exchange that answers a
list in pages (by a cursor, by an offset) is read to its end instead of its first page.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

import httpx

from purpleflea.venues.venue import NextPage

log = logging.getLogger("purpleflea.ingest.paging")

#: A guard, not a limit we expect to meet: the paged lists we read hold under 1,000 rows, in
#: pages of 100 or more (each venue's ``next_page`` says its page size).
MAX_PAGES = 20


async def fetch_pages(
    client: httpx.AsyncClient,
    url: str,
    next_page: NextPage | None,
    *,
    method: str = "GET",
    payload: Mapping[str, str] | None = None,
) -> list[httpx.Response]:
    """The responses of ``url`` and of the pages after it, in order.

    It stops after a response that is not a success (the caller judges it: a rate limit, an
    error), after the last page, when a page repeats the one before it (an endpoint that
    ignores the paging parameter would otherwise be asked the same page again and again), or
    after :data:`MAX_PAGES` pages (logged: the rest of the list is not read).
    """
    responses: list[httpx.Response] = []
    while True:
        response = await client.request(method, url, json=payload)
        if not response.is_success:
            return [*responses, response]
        if responses and response.content == responses[-1].content:
            return responses
        responses.append(response)
        following = next_page(url, response.content) if next_page is not None else None
        if following is None or following == url:
            return responses
        if len(responses) == MAX_PAGES:
            log.warning("%s: stopped after %d pages; the rest is not read", url, MAX_PAGES)
            return responses
        url = following
