"""Hyperliquid's asset contexts: mark price and open interest in coins."""

from __future__ import annotations

from purpleflea.model import Catalog
from purpleflea.venues._open_interest import PollError, as_list, json_body, keep, reading
from purpleflea.venues.hyperliquid.constants import EXCHANGE
from purpleflea.venues.venue import PollSource, Reading


def parse(body: bytes, instruments: Catalog) -> list[Reading]:
    """``POST info {"type":"metaAndAssetCtxs"}``: ``[meta, ctxs]``, ctxs in universe order."""
    del instruments
    document = json_body(EXCHANGE, body)
    if not (isinstance(document, list) and len(document) == 2 and isinstance(document[0], dict)):
        raise PollError(f"{EXCHANGE} open interest: expected [meta, assetCtxs]")
    universe = as_list(EXCHANGE, document[0].get("universe"))
    contexts = as_list(EXCHANGE, document[1])
    return keep(
        [
            reading(asset.get("name"), ctx.get("markPx"), ctx.get("openInterest"))
            for asset, ctx in zip(universe, contexts, strict=False)
        ]
    )


SOURCES = (
    PollSource(
        EXCHANGE,
        ("https://api.hyperliquid.xyz/info",),
        parse,
        method="POST",
        payload={"type": "metaAndAssetCtxs"},
    ),
)
