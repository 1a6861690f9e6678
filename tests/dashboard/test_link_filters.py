"""A shared link's filters reach the server as written: one the page's controls cannot show
(``?side=buy``, ``?exchange=Binance``, ``?min_usd=100k``) was dropped on load, and the feed
showed every liquidation, unfiltered, without a word."""

from __future__ import annotations

import re

import pytest
from playwright.async_api import Page, expect

from tests.server.conftest import Running, venue_event

pytestmark = pytest.mark.asyncio(loop_scope="session")


@pytest.mark.parametrize(
    ("query", "control", "shown", "refusal"),
    [
        ("?side=buy", "#f-side", "buy", "sides must be long and/or short, got buy"),
        (
            "?exchange=Binance",
            "#f-exchange",
            "binance",
            "did you mean binance_coinm, binance_usdm?",
        ),
        ("?min_usd=100k", "#f-min", "100k", "min_usd must be a number, got '100k'"),
    ],
)
async def test_a_links_filter_the_controls_cannot_show_is_refused_not_dropped(
    tracker: Running, page: Page, query: str, control: str, shown: str, refusal: str
) -> None:
    await tracker.push(venue_event(market="SOL-PERP", side="long", size_usd=2_000.0))
    await page.add_init_script(f"localStorage.setItem('purpleflea.api_key', {tracker.key!r})")
    await page.goto(f"{tracker.url}/{query}")
    note = page.locator("#feed-empty")
    await expect(note).to_contain_text("No feed: the server refused these filters: ")
    await expect(note).to_contain_text(refusal)
    await expect(page.locator("#feed .row")).to_have_count(0)
    # The control shows what the link asked for, and the link keeps it for a reload.
    await expect(page.locator(control)).to_have_value(shown)
    assert page.url.endswith(query)
    # Choosing a value the page offers follows the feed again.
    await page.select_option(control, "0" if control == "#f-min" else "")
    await expect(page.locator("#status")).to_have_class(re.compile("status-live"))
    await expect(page.locator("#feed .row").first).to_contain_text("SOL-PERP")
