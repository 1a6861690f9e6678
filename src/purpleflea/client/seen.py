"""Whether a market names any stored liquidation: what an empty answer filtered on markets
asks, so that a misspelt market (``ETHH-PERP``) is said to be one rather than read as a calm
market. Used by the MCP tools and ``purpleflea history``."""

from __future__ import annotations

from collections.abc import Sequence

from purpleflea.client.aio import LiquidationClient

#: Markets of one call checked for ever having been stored (a request each).
UNSEEN_CHECKED = 10


async def market_seen(client: LiquidationClient, market: str) -> bool:
    """Whether the store holds any liquidation of ``market``, at any time (one request, asked
    only when a window had none: an empty window of a real market is a quiet market, of a
    name no event carries most likely a typo)."""
    page = await client.history(markets=[market], limit=1)
    return bool(page.events)


async def unseen_markets(client: LiquidationClient, markets: Sequence[str] | None) -> list[str]:
    """The first :data:`UNSEEN_CHECKED` of ``markets`` no stored liquidation names, asked
    when an answer filtered on them came back empty."""
    unseen = []
    for market in list(markets or [])[:UNSEEN_CHECKED]:
        if not await market_seen(client, market):
            unseen.append(market)
    return unseen


async def typo_markets(client: LiquidationClient, markets: Sequence[str] | None) -> list[str]:
    """:func:`unseen_markets`, but none while the store holds no liquidation at all (a server
    just started, a simulator warming up): there every real market is unseen too, and "a
    typo?" would be said of ``BTC-PERP``. One request more when markets are named."""
    if not markets or not (await client.history(limit=1)).events:
        return []
    return await unseen_markets(client, markets)


async def stored_before(client: LiquidationClient, end: int) -> bool:
    """Whether the store holds any liquidation, of any market, before ``end`` (one request,
    asked when a window ending there had none): with none, the window is before the stored
    history (the tracker was not recording then), not a calm one."""
    page = await client.history(end=end, limit=1)
    return bool(page.events)


async def before_history(client: LiquidationClient, answered: bool, end: int) -> bool:
    """Whether a window ending at ``end`` is before the stored history: asked (one request)
    only when it was not ``answered`` otherwise (it had events, or names a market never seen)."""
    return not answered and not await stored_before(client, end)
