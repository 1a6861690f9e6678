"""asyncio as the Python versions ``requires-python`` allows, beyond the one running the tests."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

T = TypeVar("T")


async def wait_for_since_3_12(aw: Awaitable[T], timeout: float | None) -> T:
    """``asyncio.wait_for`` as Python 3.12 and later have it (the versions run here need not)."""
    async with asyncio.timeout(timeout):
        return await aw
