"""A fake Hyperliquid on loopback holding what a test puts in: the product's local server
(:mod:`purpleflea.venues.hyperliquid.local_server`, the documented info endpoint and websocket
within the documented per-IP limits) over two plain dicts the test edits."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from purpleflea.venues.hyperliquid.local_server import (
    MAX_USERS,
    WEIGHT_PER_MINUTE,
    WEIGHTS,
    HeldPosition,
    LocalHyperliquid,
)

__all__ = ["MAX_USERS", "WEIGHTS", "WEIGHT_PER_MINUTE", "FakeHyperliquid", "HeldPosition"]


class FakeHyperliquid(LocalHyperliquid):
    """``positions``: address -> its positions; ``markets``: coin -> (mark, open interest)."""

    def __init__(
        self,
        positions: dict[str, list[HeldPosition]] | None = None,
        markets: dict[str, tuple[float, float]] | None = None,
    ) -> None:
        super().__init__()
        self.positions = positions if positions is not None else {}
        self.markets = markets if markets is not None else {}

    def held(self, user: str) -> Sequence[HeldPosition]:
        return self.positions.get(user.lower(), [])

    def contexts(self) -> Mapping[str, tuple[float, float]]:
        return self.markets

    async def __aenter__(self) -> FakeHyperliquid:
        await self.start()
        return self
