"""Hyperliquid's asset contexts: mark price and open interest in coins.

A ``k`` coin (``kPEPE``, ``kSHIB``, ``kBONK``) trades bundles of 1,000: its ``markPx`` is per
1,000 coins and its ``openInterest`` counts bundles. Both are turned into real coins, the unit
of its market (``PEPE-PERP``) on every other exchange and in its own liquidations.

Delisted coins (``"isDelisted": true`` in the universe) give no reading.

Whether ``openInterest`` is one side is not documented, and the public record disagrees: in
July 2025 traders (and a reply of Binance Futures) said Hyperliquid summed longs and shorts,
while 2026 sources that count positions themselves call Hyperliquid's headline one-sided (a
positions explorer's two-sided figure is "2x the one-sided OI some UIs show"). It is read as
one side until a count of positions settles it.
"""

from __future__ import annotations

from purpleflea.model import Catalog
from purpleflea.venues._open_interest import (
    PollError,
    as_list,
    in_real_coins,
    json_body,
    keep,
    reading,
)
from purpleflea.venues.hyperliquid.constants import EXCHANGE
from purpleflea.venues.hyperliquid.normalizer import market
from purpleflea.venues.venue import PollSource, Reading


def parse(body: bytes, instruments: Catalog) -> list[Reading]:
    """``POST info {"type":"metaAndAssetCtxs"}``: ``[meta, ctxs]``, ctxs in universe order."""
    del instruments
    document = json_body(EXCHANGE, body)
    if not (isinstance(document, list) and len(document) == 2 and isinstance(document[0], dict)):
        raise PollError(f"{EXCHANGE} open interest: expected [meta, assetCtxs]")
    universe = as_list(EXCHANGE, document[0].get("universe"))
    contexts = as_list(EXCHANGE, document[1])
    found = []
    for asset, ctx in zip(universe, contexts, strict=False):
        if asset.get("isDelisted") is True:
            # The universe keeps delisted coins in place (ctxs are by position) with a ctx
            # frozen at delisting: openInterest 0.0 and the last markPx (mainnet MATIC, live
            # answer of 2026-09-03). No market to read, and its mark is no price.
            continue
        found_reading = reading(asset.get("name"), ctx.get("markPx"), ctx.get("openInterest"))
        name = market(found_reading.symbol) if found_reading is not None else None
        if found_reading is not None and name is not None:
            found_reading = in_real_coins(found_reading, name.multiplier)
        found.append(found_reading)
    return keep(found)


SOURCES = (
    PollSource(
        EXCHANGE,
        ("https://api.hyperliquid.xyz/info",),
        parse,
        method="POST",
        payload={"type": "metaAndAssetCtxs"},
    ),
)
