"""Hyperliquid's asset contexts: mark price and open interest in coins.

A ``k`` coin (``kPEPE``, ``kSHIB``, ``kBONK``) trades bundles of 1,000: its ``markPx`` is per
1,000 coins and its ``openInterest`` counts bundles. Both are turned into real coins, the unit
of its market (``PEPE-PERP``) on every other exchange and in its own liquidations.

Delisted coins (``"isDelisted": true`` in the universe) give no reading.

``metaAndAssetCtxs`` answers for one perp dex: the first without ``dex``, a HIP-3
builder-deployed dex only to ``{"dex": name}`` (docs, info endpoint > Perpetuals: "Perp dex
name. Defaults to the empty string which represents the first perp dex"), its coins named
``dex:COIN`` (``xyz:TSLA``, ``hyna:BTC``; live answers of ``{"type":"metaAndAssetCtxs",
"dex":"xyz"}`` quoted in public notes, code index ids 69887509738 and 52666061760). So the
poller asks ``perpDexs`` for the dexes (:func:`parse_dexes`), then each dex. A builder dex's
coin keeps its name as the reading's symbol: ``hyna:BTC`` is another listing of BTC-PERP with
its own book, mark and open interest (a public HyENA funding script, code index id
57424449963: "SEPARATE markets with INDEPENDENT funding rates, OI, and orderbooks"), as a
liquidation of it is in the stream, and never the first dex's ``BTC``.

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
from purpleflea.venues.hyperliquid.normalizer import market, perp_dex
from purpleflea.venues.venue import PerScope, PollSource, Reading

# Hyperliquid docs, "Rate limits" (per IP): "REST requests share an aggregated weight limit of
# 1200 per minute"; the info requests of weight 2 are l2Book, allMids, clearinghouseState,
# orderStatus, spotClearinghouseState and exchangeStatus, and "All other documented info
# requests have weight 20": perpDexs and metaAndAssetCtxs among them.
REQUEST_WEIGHT = 20
#: Seconds between two of the poller's requests: at most 6 a minute, 120 weight, whatever the
#: number of dexes (ten builder dexes in a 2026 mainnet list, xyz to io, code index id
#: 63172628589: a round of a dozen requests then takes two minutes). The position sampler
#: reserves this much of the IP's allowance.
PAUSE = 10.0


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


def parse_dexes(body: bytes) -> tuple[str, ...]:
    """``POST info {"type":"perpDexs"}``: the perp dexes in listed order, the first as ``""``.

    The first entry is ``null``, the first perp dex; each other is a builder-deployed dex,
    ``{"name", "fullName", "deployer", ..}`` (docs, info endpoint > Perpetuals, "Retrieve all
    perpetual dexs": ``[null, {"name": "test", "fullName": "test dex", ..}]``). The first is
    always asked, whatever the answer lists; an entry that names no dex is skipped."""
    found = json_body(EXCHANGE, body)
    if not isinstance(found, list):
        raise PollError(f"{EXCHANGE} perpDexs: expected a list, got {type(found).__name__}")
    names = [""]
    for entry in found:
        name = entry.get("name") if isinstance(entry, dict) else None
        if isinstance(name, str) and name and ":" not in name:
            names.append(name)
    return tuple(dict.fromkeys(names))


def contexts_request(dex: str) -> dict[str, str]:
    """``metaAndAssetCtxs`` of one perp dex (``""``: the first, asked without ``dex``)."""
    request = {"type": "metaAndAssetCtxs"}
    return {**request, "dex": dex} if dex else request


def most_weight_per_minute(source: PollSource) -> float:
    """The most request weight ``source`` spends in any minute: one request every ``pause``
    seconds when it asks each dex, else its urls once every ``interval``."""
    if source.per_scope is not None:
        return REQUEST_WEIGHT * 60 / source.per_scope.pause
    return REQUEST_WEIGHT * len(source.urls) * 60 / source.interval


SOURCES = (
    PollSource(
        EXCHANGE,
        ("https://api.hyperliquid.xyz/info",),
        parse,
        method="POST",
        per_scope=PerScope(
            listing={"type": "perpDexs"},
            parse=parse_dexes,
            request=contexts_request,
            scope_of=perp_dex,
            pause=PAUSE,
        ),
    ),
)
