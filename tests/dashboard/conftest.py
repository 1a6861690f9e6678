"""One chromium for the whole dashboard suite; a fresh tracker and browser page per test."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest_asyncio
from playwright.async_api import Browser, Page, async_playwright

from tests.dashboard.harness import dashboard_server, launch_chromium
from tests.server.conftest import Running


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        chromium = await launch_chromium(playwright)
        yield chromium
        await chromium.close()


@pytest_asyncio.fixture(loop_scope="session")
async def tracker(tmp_path: Path) -> AsyncIterator[Running]:
    async with dashboard_server(tmp_path) as running:
        yield running


@contextlib.asynccontextmanager
async def page_in(browser: Browser, **context: Any) -> AsyncIterator[Page]:
    """A page in a new browser context (``context``: Playwright's options for it); fails the
    test if the page threw."""
    browsing = await browser.new_context(**context)
    page = await browsing.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    yield page
    await browsing.close()
    assert not errors, f"the page threw: {errors}"


@pytest_asyncio.fixture(loop_scope="session")
async def page(browser: Browser) -> AsyncIterator[Page]:
    async with page_in(browser, viewport={"width": 1280, "height": 900}) as page:
        yield page
