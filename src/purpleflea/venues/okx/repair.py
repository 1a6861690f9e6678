"""Gap repair: OKX's public liquidation orders of the last day, family by family.

``GET /api/v5/public/liquidation-orders?instType=SWAP|FUTURES&instFamily=BTC-USDT&state=filled
&after=<ts>&limit=100`` (okx.com/docs-v5, Public Data / REST / Get liquidation orders; public,
no auth). The docs: "Retrieve information on liquidation orders in the last day" (an older
copy of the page said 7 days; the shorter reach is kept), rate limit 40 requests per 2 seconds
per IP, ``limit`` at most 100 (the default), ``state`` required for SWAP and FUTURES,
``uly`` or ``instFamily`` required for them, ``after``: "records earlier than the requested
``ts``", ``before``: newer. Newest first, so the window is paged backwards with ``after`` alone
until a page reaches past its start.

Its answer ``{"code":"0","msg":"","data":[{"instId","instFamily","uly","instType",
"totalLoss","details":[{side,posSide,bkPx,sz,bkLoss,ccy,ts}]}]}`` lists the same item and
detail objects as the ``liquidation-orders`` channel, so the channel's own rule
(:func:`~purpleflea.venues.okx.normalizer.items_events`) gives the same events with the same
ids (``instId:ts:posSide:side:sz:bkPx``, OKX's text as sent) and a repaired copy of a liquidation
the channel delivered deduplicates. The channel "doesn't represent the total"; what the REST
history adds keeps the venue's ``snapshot`` coverage tag (nothing says this list is complete).

As really answered: the endpoint left OKX's docs in 2026 (two public probes of 2026-09 found
no mention of it on the docs page) but still answered: a probe of 2026-08-08
(``instType=SWAP&uly=BTC-USDT&state=filled``) got ``code 0`` and about 1,003 details over about
23.5 hours in one answer, and a public project's one call per family on 2026-03-04/05 kept
1,052 to 1,632 details each, read from ``ts``, ``side``, ``sz`` and ``bkPx`` (shared/data/real,
0xknxwledge). One answer can so list far more than ``limit`` details: a page of ``PAGE`` or more
is read as possibly followed by older ones.
"""

from __future__ import annotations

from urllib.parse import urlencode

import msgspec

from purpleflea.model import NO_INSTRUMENTS, Catalog
from purpleflea.venues._frame import FrameDecoder, FrameError, timestamp_ms
from purpleflea.venues.okx.constants import EXCHANGE
from purpleflea.venues.okx.normalizer import Item, items_events, market
from purpleflea.venues.venue import RepairPage, RepairSource

BASE = "https://www.okx.com"
PATH = "/api/v5/public/liquidation-orders"
#: The endpoint's largest ``limit`` (its docs: at most 100).
PAGE = 100
#: "Liquidation orders in the last day".
REACH_MS = 24 * 3600 * 1000


class _Answer(msgspec.Struct):
    code: str = ""
    msg: str = ""
    data: list[Item] | None = None


_decode = FrameDecoder(EXCHANGE, _Answer)


def instrument(inst_type: str, family: str) -> str:
    """The name :func:`request` takes: ``SWAP:BTC-USDT``."""
    return f"{inst_type}:{family}"


def request(name: str, start_ms: int, end_ms: int) -> str:
    """The path and query of ``name``'s (``SWAP:BTC-USDT``) filled liquidations at or before
    ``end_ms``, newest first; ``start_ms`` is where the caller stops paging (OKX has no
    lower bound that combines with ``after`` in its docs)."""
    del start_ms
    inst_type, _, family = name.partition(":")
    query = {
        "instType": inst_type,
        "instFamily": family,
        "state": "filled",
        # ``after`` is exclusive; one more ms keeps the boundary's events on the page.
        "after": end_ms + 1,
        "limit": PAGE,
    }
    return f"{PATH}?{urlencode(query)}"


def parse(body: bytes, name: str = "", catalog: Catalog = NO_INSTRUMENTS) -> RepairPage:
    """One answer -> its events, sized from the catalog as the channel's are; an item that
    does not say its type has the one asked for (``name``: ``SWAP:BTC-USDT``)."""
    answer = _decode(body)
    if answer.code != "0" or answer.data is None:
        raise FrameError(
            EXCHANGE, f"liquidation-orders answer code={answer.code!r} msg={answer.msg!r}"
        )
    events = items_events(answer.data, name.partition(":")[0], catalog)
    stamps = [
        timestamp_ms(EXCHANGE, f"data[{i}].details[{j}].ts", detail.ts)
        for i, item in enumerate(answer.data)
        for j, detail in enumerate(item.details)
    ]
    # A full page may have older rows beyond it; the next page starts at its oldest row.
    return RepairPage(events, len(stamps) >= PAGE, min(stamps, default=None))


def instruments(catalog: Catalog) -> list[str]:
    """One name per instrument family and type of the catalog's swaps and futures (the
    channel subscribes to every SWAP and FUTURES liquidation)."""
    found = set()
    for inst_id in catalog:
        parts = inst_id.split("-")
        if len(parts) == 3 and market(inst_id) is not None:
            kind = "SWAP" if parts[2] == "SWAP" else "FUTURES"
            found.add(instrument(kind, f"{parts[0]}-{parts[1]}"))
    return sorted(found)


SOURCE = RepairSource(
    exchange=EXCHANGE,
    base=BASE,
    request=request,
    parse=parse,
    instruments=instruments,
    reach_ms=REACH_MS,
    # 40 requests per 2 s per IP: one every 0.1 s is half of it, the rest left to the pollers.
    pause=0.1,
    newest_first=True,
)
