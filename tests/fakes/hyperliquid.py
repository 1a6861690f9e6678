"""A fake Hyperliquid on loopback holding what a test puts in: the product's local server
(:mod:`purpleflea.venues.hyperliquid.local_server`, the documented info endpoint and websocket
within the documented per-IP limits) over two plain dicts the test edits."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from purpleflea.venues.hyperliquid.local_server import (
    MAX_USERS,
    WEIGHT_PER_MINUTE,
    WEIGHTS,
    HeldPosition,
    LocalHyperliquid,
)

__all__ = ["MAX_USERS", "WEIGHTS", "WEIGHT_PER_MINUTE", "FakeHyperliquid", "HeldPosition"]


class FakeHyperliquid(LocalHyperliquid):
    """``positions``: address -> its positions; ``markets``: coin -> (mark, open interest);
    ``broken``: builder dexes ``perpDexs`` lists whose ``metaAndAssetCtxs`` answers ``null``,
    as the real one answers a dex it does not know."""

    def __init__(
        self,
        positions: dict[str, list[HeldPosition]] | None = None,
        markets: dict[str, tuple[float, float]] | None = None,
    ) -> None:
        super().__init__()
        self.positions = positions if positions is not None else {}
        self.markets = markets if markets is not None else {}
        self.broken: set[str] = set()

    def held(self, user: str) -> Sequence[HeldPosition]:
        return self.positions.get(user.lower(), [])

    def contexts(self) -> Mapping[str, tuple[float, float]]:
        return self.markets

    def perp_dexs(self) -> Sequence[str]:
        return [*super().perp_dexs(), *sorted(self.broken)]

    def meta_and_asset_ctxs(self, dex: str = "") -> list[Any] | None:
        return None if dex in self.broken else super().meta_and_asset_ctxs(dex)

    async def __aenter__(self) -> FakeHyperliquid:
        await self.start()
        return self
