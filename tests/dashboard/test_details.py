"""Details that were only in hover titles, reached without a mouse.

A heatmap bar's price range and notional, a coverage hour's uptime and gaps, and a top market's
long/short split lived in `title`s: a trader on a phone (no hover) or on a keyboard or screen
reader never saw them. Each is now focusable, labelled with the same text, and shown on tap,
click or focus in a detail line under what it describes.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from playwright.async_api import Browser, Locator, Page, expect

from tests.dashboard.conftest import page_in
from tests.dashboard.harness import now_ms, seed_coverage, seed_heatmap
from tests.dashboard.test_dashboard import open_live
from tests.server.conftest import Running, venue_event

pytestmark = pytest.mark.asyncio(loop_scope="session")

# The widest bar clear of the mark line (drawn over the bars, it would take the tap).
_WIDEST_BAR = """svg => {
  const mark = svg.querySelector(".hm-mark");
  const markY = mark ? +mark.getAttribute("y1") : -1e9;
  const bars = [...svg.querySelectorAll(".hm-long, .hm-short")];
  let best = -1;
  bars.forEach((bar, i) => {
    const y = +bar.getAttribute("y"), h = +bar.getAttribute("height");
    if (y - 3 < markY && markY < y + h + 3) return;
    if (best < 0 || +bar.getAttribute("width") > +bars[best].getAttribute("width")) best = i;
  });
  return best;
}"""


@pytest_asyncio.fixture(loop_scope="session")
async def phone(browser: Browser) -> AsyncIterator[Page]:
    """A phone: 390 px wide, touch, no hover."""
    async with page_in(
        browser, viewport={"width": 390, "height": 844}, has_touch=True, is_mobile=True
    ) as page:
        yield page


async def seed_all(tracker: Running) -> None:
    seed_heatmap(tracker, "BTC-PERP", 91_240.0, 4e9)
    await seed_coverage(tracker)
    now = now_ms()
    await tracker.push(
        venue_event(market="AVAX-PERP", side="long", size_usd=30_000.0, price=30.0, ts=now - 2),
        venue_event(market="AVAX-PERP", side="short", size_usd=10_000.0, price=30.1, ts=now - 1),
    )


async def widest_bar(page: Page) -> Locator:
    chart = page.locator("#heatmap .heatmap-chart")
    await expect(chart).to_be_visible()
    index = await chart.evaluate(_WIDEST_BAR)
    assert index >= 0
    return chart.locator(".hm-long, .hm-short").nth(index)


async def below(upper: Locator, lower: Locator) -> None:
    """`lower` is drawn under `upper`, not over it."""
    a = await upper.bounding_box()
    b = await lower.bounding_box()
    assert a is not None
    assert b is not None
    assert b["y"] >= a["y"] + a["height"] - 0.5, (a, b)


async def test_a_tap_shows_a_heatmap_bar_an_hour_and_a_markets_split_on_a_phone(
    tracker: Running, phone: Page
) -> None:
    await seed_all(tracker)
    await open_live(phone, tracker)
    page = phone

    bar = await widest_bar(page)
    label = await bar.get_attribute("aria-label")
    assert label is not None
    assert re.search(r"\$[\d,.]+ \u2013 \$[\d,.]+: longs \$.*, shorts \$", label), label
    line = page.locator("#heatmap .detail-line")
    await expect(line).not_to_have_text(label)
    await bar.tap()
    await expect(line).to_have_text(label)
    await expect(line).to_be_visible()
    await below(page.locator("#heatmap .heatmap-chart"), line)

    # Bybit was down for an hour: tapping that hour tells it, and the gap in it.
    bybit = page.locator('#coverage .cov-row[data-exchange="bybit"]')
    down = bybit.locator(".cov-hour[aria-label*='gap']").first
    await down.scroll_into_view_if_needed()
    await down.tap()
    cov_line = page.locator(".coverage-panel .detail-line")
    await expect(cov_line).to_be_visible()
    await expect(cov_line).to_contain_text(re.compile(r"^bybit .*: up \d"))
    await expect(cov_line).to_contain_text("(unreachable) · open: no REST history")
    await below(page.locator("#coverage"), cov_line)

    # A 2 px gap mark is no tap target: a tap on it reaches the hour under it.
    deribit = page.locator('#coverage .cov-row[data-exchange="deribit"]')
    mark = await deribit.locator(".cov-gap-repaired").bounding_box()
    assert mark is not None
    await page.touchscreen.tap(mark["x"] + mark["width"] / 2, mark["y"] + mark["height"] / 2)
    await expect(cov_line).to_contain_text(re.compile(r"^deribit .*repaired from REST: 3 events"))

    avax = page.locator("#top-markets li").filter(has_text="AVAX-PERP").locator(".bar")
    await avax.scroll_into_view_if_needed()
    await avax.tap()
    top_line = page.locator(".top-panel .detail-line")
    await expect(top_line).to_be_visible()
    await expect(top_line).to_have_text(
        "AVAX-PERP: longs $30K · shorts $10K · $40,000 in 2 liquidations in the last 1 h"
    )
    await below(page.locator("#top-markets"), top_line)
    # The heatmap's line still says what was tapped there: each panel has its own.
    await expect(line).to_have_text(label)


async def test_tab_reaches_each_detail_and_arrows_walk_them(tracker: Running, page: Page) -> None:
    await seed_all(tracker)
    await open_live(page, tracker)
    await widest_bar(page)
    await expect(page.locator("#coverage .cov-row")).to_have_count(3)
    await expect(page.locator("#top-markets li").filter(has_text="AVAX-PERP")).to_have_count(1)

    async def tab_to(selector: str, presses: int) -> Locator:
        for _ in range(presses):
            await page.keyboard.press("Tab")
            if await page.evaluate("s => document.activeElement.matches(s)", selector):
                return page.locator(":focus")
        raise AssertionError(f"{presses} presses of Tab never reached {selector}")

    # From the heatmap's "show" button, Tab reaches the chart (its bands, then its bars) ...
    await page.focus("#heatmap-form button")
    bar = await tab_to(".hm-long, .hm-short", 3)
    line = page.locator("#heatmap .detail-line")
    label = await bar.get_attribute("aria-label")
    assert label
    await expect(line).to_have_text(label)
    # ... the arrows walk the bars, top to bottom ...
    y0 = float(await bar.get_attribute("y") or "nan")
    await page.keyboard.press("ArrowDown")
    await page.keyboard.press("ArrowDown")
    moved = page.locator(":focus")
    assert float(await moved.get_attribute("y") or "nan") > y0
    assert await moved.evaluate("n => n.matches('.hm-long, .hm-short')")
    await expect(line).to_have_text(await moved.get_attribute("aria-label") or "?")
    # ... and one more Tab leaves the chart: 200 bars are one stop, not 200.
    await page.keyboard.press("Tab")
    assert not await page.evaluate("document.activeElement.matches('.hm-long, .hm-short')")

    # Top markets: the range toggle, the market's button, then its bar.
    await page.focus(".top-panel .toggle button[data-range='24h']")
    split = await tab_to("#top-markets .bar", 3)
    await expect(page.locator(".top-panel .detail-line")).to_have_text(
        await split.get_attribute("aria-label") or "?"
    )
    # Coverage: each exchange is one stop, its badge first; the arrows walk on to its hours.
    badge = await tab_to("#coverage .cov-badge", 12)
    cov_line = page.locator(".coverage-panel .detail-line")
    await expect(cov_line).to_have_text(await badge.get_attribute("aria-label") or "?")
    await page.keyboard.press("ArrowRight")
    hour = page.locator(":focus")
    assert await hour.evaluate("n => n.matches('#coverage .cov-hour')")
    first = await hour.get_attribute("aria-label")
    assert first
    await expect(cov_line).to_have_text(first)
    await page.keyboard.press("End")
    last = await page.locator(":focus").get_attribute("aria-label")
    assert last != first
    await expect(cov_line).to_have_text(last or "?")


async def test_every_detail_carries_its_text_as_an_accessible_name(
    tracker: Running, page: Page
) -> None:
    await seed_all(tracker)
    await open_live(page, tracker)
    await widest_bar(page)
    await expect(page.locator("#coverage .cov-row")).to_have_count(3)
    await expect(page.locator("#top-markets .bar")).not_to_have_count(0)
    found = await page.evaluate(
        """() => {
      const said = n => n.getAttribute("aria-label");
      const hover = n => n.querySelector(":scope > title")?.textContent ?? n.getAttribute("title");
      const all = [...document.querySelectorAll("#heatmap .hm-long, #heatmap .hm-short, " +
        "#heatmap .hm-cluster, #coverage .cov-hour, #coverage .cov-badge, #top-markets .bar")];
      return {
        count: all.length,
        unnamed: all.filter(n => !said(n)).length,
        differ: all.filter(n => said(n) !== hover(n)).length,
        unfocusable: all.filter(n => n.getAttribute("tabindex") === null).length,
        roles: [...new Set(all.map(n => n.getAttribute("role")))],
        // An image's parts are hidden from screen readers: the chart must not be one.
        chartRole: document.querySelector("#heatmap .heatmap-chart").getAttribute("role"),
      };
    }"""
    )
    assert found["count"] > 100, found
    assert found["unnamed"] == 0, found
    assert found["differ"] == 0, found  # a mouse's hover says what the label says
    assert found["unfocusable"] == 0, found
    assert found["roles"] == ["img"], found
    assert found["chartRole"] == "group", found
    # A feed row stays a list item (an image's cells would be hidden), named by its detail.
    rows = await page.evaluate(
        """() => [...document.querySelectorAll("#feed .row")].map(n => ({
          said: n.getAttribute("aria-label"), hover: n.getAttribute("title"),
          role: n.getAttribute("role"), tabindex: n.getAttribute("tabindex"),
          list: n.parentElement.tagName }))"""
    )
    assert len(rows) == 2, rows
    for row in rows:
        assert row["said"], row
        assert row["said"] == row["hover"], row
        assert row["role"] is None, row
        assert row["list"] == "OL", row
    assert sorted(r["tabindex"] for r in rows) == ["-1", "0"], rows  # one Tab stop


async def test_a_focused_bar_stays_focused_through_the_heatmaps_refresh(
    tracker: Running, page: Page
) -> None:
    # The heatmap is redrawn every 15 s; a reader on a bar was dropped to the page's start.
    seed_heatmap(tracker, "BTC-PERP", 91_240.0, 4e9)
    await page.clock.install()
    await open_live(page, tracker)
    bar = await widest_bar(page)
    await bar.focus()
    key = await bar.get_attribute("data-detail-key")
    await page.locator("#heatmap .heatmap-chart").evaluate("c => { c.dataset.old = 'yes'; }")
    await page.clock.run_for(16_000)
    await expect(page.locator("#heatmap .heatmap-chart:not([data-old])")).to_have_count(1)
    focused = page.locator(":focus")
    await expect(focused).to_have_attribute("data-detail-key", key or "?")
    assert await focused.evaluate("n => !n.closest('[data-old]')")  # the redrawn bar
    await expect(page.locator("#heatmap .detail-line")).to_have_text(
        await focused.get_attribute("aria-label") or "?"
    )


async def test_the_top_markets_line_follows_the_range_and_the_market(
    tracker: Running, page: Page
) -> None:
    await seed_all(tracker)
    await open_live(page, tracker)
    line = page.locator(".top-panel .detail-line")
    hint = await line.inner_text()
    await page.locator("#top-markets li").filter(has_text="AVAX-PERP").locator(".bar").click()
    await expect(line).to_have_text(re.compile(r"^AVAX-PERP: .* in the last 1 h$"))
    # The same market redrawn over 24 h: the line gives its new numbers, not the old ones.
    await page.click(".top-panel .toggle button[data-range='24h']")
    await expect(line).to_have_text(re.compile(r"^AVAX-PERP: .* in the last 24 h$"))
    # A market liquidated two hours ago is in the 24 h list only: back to 1 h, what the line
    # described is gone, and the line says how to pick again.
    await tracker.push(
        venue_event(market="OLD-PERP", size_usd=5_000.0, price=2.0, ts=now_ms() - 7_200_000)
    )
    await page.click(".top-panel .toggle button[data-range='1h']")
    await page.click(".top-panel .toggle button[data-range='24h']")
    old = page.locator("#top-markets li").filter(has_text="OLD-PERP").locator(".bar")
    await old.click()
    await expect(line).to_have_text(re.compile(r"^OLD-PERP: "))
    await page.click(".top-panel .toggle button[data-range='1h']")
    await expect(page.locator("#top-markets li").filter(has_text="OLD-PERP")).to_have_count(0)
    await expect(line).to_have_text(hint)


_QTY = re.compile(
    r"^LONG LIQ THIRD-PERP \$1,000 at \$3\.00 · Cascade: \d+/10 · binance_usdm · "
    r"\d\d:\d\d:\d\d UTC\S* · 333\.33333 coins \(THIRDUSDT\) · seq \d+$"
)


async def on_screen(page: Page, node: Locator) -> None:
    """`node` is inside the viewport, not scrolled off it (sideways or below)."""
    box = await node.bounding_box()
    view = page.viewport_size
    assert box is not None
    assert view is not None
    assert box["x"] >= -0.5, (box, view)
    assert box["x"] + box["width"] <= view["width"] + 0.5, (box, view)
    assert box["y"] >= -0.5, (box, view)
    assert box["y"] + box["height"] <= view["height"] + 0.5, (box, view)


async def test_a_tap_shows_a_venues_coverage_class_and_a_rows_quantity_on_a_phone(
    tracker: Running, phone: Page
) -> None:
    # A venue's coverage class (what it sends) and a feed row's quantity in coins were hover
    # titles only: a phone never showed them, nor the exchange and time of a row, which its
    # 390 px scroll sideways off the screen.
    await seed_coverage(tracker)
    await open_live(phone, tracker)
    page = phone
    await tracker.push(venue_event(market="THIRD-PERP", size_usd=1_000, price=3.0, ts=now_ms()))
    row = page.locator("#feed .row").filter(has_text="THIRD-PERP")
    line = page.locator(".feed-panel .detail-line")
    await expect(line).not_to_have_text(_QTY)
    await row.locator(".market").tap()
    await expect(line).to_have_text(_QTY)
    await on_screen(page, line)
    await expect(row).to_be_focused()
    # Scrolled sideways to the row's time, the line is still in view, still saying it all.
    await page.locator(".feed-panel").evaluate("p => { p.scrollLeft = p.scrollWidth; }")
    await row.locator(".time").tap()
    await on_screen(page, row.locator(".time"))
    await expect(line).to_have_text(_QTY)
    await on_screen(page, line)

    binance = page.locator('#coverage .cov-row[data-exchange="binance_usdm"] .cov-badge')
    await binance.scroll_into_view_if_needed()
    await binance.tap()
    cov_line = page.locator(".coverage-panel .detail-line")
    await expect(cov_line).to_have_text(
        re.compile(r"^binance_usdm \(.+\): snapshot, this venue sends a throttled sample .*floor$")
    )
    await on_screen(page, cov_line)
    await below(page.locator("#coverage"), cov_line)
    deribit = page.locator('#coverage .cov-row[data-exchange="deribit"] .cov-badge')
    await deribit.tap()
    await expect(cov_line).to_have_text(
        re.compile(r"^deribit \(.+\): complete, .*every liquidation$")
    )


async def test_tab_reaches_the_feed_and_the_arrows_walk_its_rows(
    tracker: Running, page: Page
) -> None:
    await open_live(page, tracker)
    now = now_ms()
    await tracker.push(
        venue_event(market="THIRD-PERP", size_usd=1_000, price=3.0, ts=now - 2),
        venue_event(market="SECOND-PERP", size_usd=2_000, price=4.0, ts=now - 1),
        venue_event(market="FIRST-PERP", size_usd=3_000, price=5.0, ts=now),
    )
    feed = page.locator("#feed .row")
    await expect(feed.first).to_contain_text("FIRST-PERP")
    line = page.locator(".feed-panel .detail-line")
    # The filters' "clear" is the last stop before the feed: one Tab lands on the newest row.
    await page.focus("#f-clear")
    await page.keyboard.press("Tab")
    await expect(feed.first).to_be_focused()
    await expect(line).to_have_text(re.compile(r"^LONG LIQ FIRST-PERP .* 600 coins \(FIRSTUSDT\)"))
    await page.keyboard.press("ArrowDown")
    await page.keyboard.press("ArrowDown")
    third = feed.filter(has_text="THIRD-PERP")
    await expect(third).to_be_focused()
    await expect(line).to_have_text(_QTY)
    await page.keyboard.press("Home")
    await expect(feed.first).to_be_focused()
    await page.keyboard.press("End")
    await expect(third).to_be_focused()
    # Newer rows arrive: the row picked keeps its place (focus) and the Tab stop.
    await tracker.push(venue_event(market="NEW-PERP", size_usd=4_000, ts=now_ms()))
    await expect(feed.first).to_contain_text("NEW-PERP")
    await expect(third).to_be_focused()
    await page.keyboard.press("Tab")  # on to the heatmap's form
    await expect(third).not_to_be_focused()
    await page.keyboard.press("Shift+Tab")
    await expect(third).to_be_focused()
    await expect(line).to_have_text(_QTY)


_PHONE_FITS = """() => {
  const chart = document.querySelector('#heatmap .heatmap-chart');
  const status = document.querySelector('#status');
  const badges = [...document.querySelectorAll('#coverage .cov-badge')];
  return {
    pageScrolls: document.documentElement.scrollWidth > document.documentElement.clientWidth,
    // CSS px a chart unit: below 1 its 10 px labels are drawn smaller.
    chartScale: chart.getBoundingClientRect().width / chart.viewBox.baseVal.width,
    hourWidth: Math.min(...[...document.querySelectorAll('#coverage .cov-hour')]
      .map((n) => n.getBoundingClientRect().width)),
    hourHeight: document.querySelector('#coverage .cov-hour').getBoundingClientRect().height,
    badgesCut: badges.filter((b) => b.scrollWidth > b.clientWidth + 0.5).length,
    statusCut: status.scrollWidth > status.clientWidth + 0.5,
    statusRight: status.getBoundingClientRect().right,
  };
}"""


async def test_on_a_phone_the_chart_labels_hours_badges_and_status_are_whole(
    tracker: Running, phone: Page
) -> None:
    # At 390 px the heatmap's 520-unit drawing was shrunk to 328 px (its 10 px price labels
    # drawn at 6 px), an hour of a coverage strip was 5 px wide beside the name and badge,
    # "SNAPSHOT" ran out of its badge, a long status reason was cut behind an ellipsis (the
    # rest only in a hover title), and the header's rate read "0 / s" (of what: a title).
    await seed_all(tracker)

    async def degraded(route):  # type: ignore[no-untyped-def]
        await route.fulfill(
            json={
                "status": "degraded",
                "reasons": ["source live: no exchange connection is up", "store: disk is full"],
            }
        )

    await phone.route("**/v1/health", degraded)
    await phone.add_init_script(f"localStorage.setItem('purpleflea.api_key', {tracker.key!r})")
    await phone.goto(f"{tracker.url}/")
    status = phone.locator("#status")
    await expect(status).to_have_text(
        "degraded: server says source live: no exchange connection is up; store: disk is full"
    )
    await widest_bar(phone)
    await expect(phone.locator("#coverage .cov-row")).to_have_count(3)
    found = await phone.evaluate(_PHONE_FITS)
    assert not found["pageScrolls"], found
    assert found["chartScale"] >= 0.99, found
    assert found["hourWidth"] >= 10, found
    assert found["hourHeight"] >= 20, found
    assert found["badgesCut"] == 0, found
    assert not found["statusCut"], found
    assert found["statusRight"] <= 390, found
    # The status is whole in its text as well: no title to hover for the rest.
    assert await status.get_attribute("title") is None
    # The rate in the header says what it counts ("0 / s" said it only in its title).
    await expect(phone.locator("#rate")).to_have_text(re.compile(r"^\d+ liq/s$"))
