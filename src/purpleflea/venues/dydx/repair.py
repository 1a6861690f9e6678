"""Gap repair: the dYdX v4 indexer's public trade list, its ``LIQUIDATED`` trades.

``GET https://indexer.dydx.trade/v4/trades/perpetualMarket/{ticker}?limit=&
createdBeforeOrAt=`` (docs.dydx.exchange, Indexer API "Get Trades"; public, no auth; also
``createdBeforeOrAtHeight`` and ``page``). Newest first; ``createdBeforeOrAt`` is an ISO-8601
time, inclusive; ``limit`` at most the indexer's ``API_LIMIT_V4`` (1000 in the comlink
service's config of dydxprotocol/v4-chain). The indexer keeps every
fill in its database and documents no limit on how far back the list reaches.

The answer ``{"trades":[{id,side,size,price,type,createdAt,createdAtHeight}]}`` is the
``v4_trades`` channel's own trade object: the indexer's websocket server answers a
``v4_trades`` subscribe with this very endpoint's response (the ``subscribed`` contents:
``getInitialEndpointForSubscription`` in the indexer's socks service). So the channel's rule
(:func:`~purpleflea.venues.dydx.normalizer.trades_events`) gives the same events with the same
ids (the trade ``id``), and what the live feed or its ``subscribed`` replay delivered
deduplicates. Trades are every fill; only ``LIQUIDATED`` ones are events, the others still
move the page on.
"""

from __future__ import annotations

from urllib.parse import quote, urlencode

import msgspec

from purpleflea.model import NO_INSTRUMENTS, Catalog
from purpleflea.venues._connection import symbols_of
from purpleflea.venues._frame import FrameDecoder, FrameError, iso_ms, ms_iso
from purpleflea.venues.dydx.constants import EXCHANGE
from purpleflea.venues.dydx.normalizer import Trade, market, trades_events
from purpleflea.venues.venue import RepairPage, RepairSource

BASE = "https://indexer.dydx.trade"
PATH = "/v4/trades/perpetualMarket/"
#: The indexer's largest ``limit`` (``API_LIMIT_V4``).
PAGE = 1000


class _Answer(msgspec.Struct):
    trades: list[Trade] | None = None
    errors: list[dict[str, object]] | None = None


_decode = FrameDecoder(EXCHANGE, _Answer)


def request(ticker: str, start_ms: int, end_ms: int) -> str:
    """The path and query of ``ticker``'s trades at or before ``end_ms``, newest first;
    ``start_ms`` is where the caller stops paging (the endpoint has no lower bound)."""
    del start_ms
    query = {"limit": PAGE, "createdBeforeOrAt": ms_iso(end_ms)}
    return f"{PATH}{quote(ticker)}?{urlencode(query)}"


def parse(body: bytes, ticker: str, catalog: Catalog = NO_INSTRUMENTS) -> RepairPage:
    """One answer -> ``ticker``'s liquidations (sizes are coins: no catalog needed)."""
    del catalog
    answer = _decode(body)
    if answer.trades is None:
        raise FrameError(EXCHANGE, f"trades answer without 'trades': {answer.errors!r}")
    events = trades_events(ticker, answer.trades, "answer", replay=False)
    stamps = [
        iso_ms(EXCHANGE, f"answer.trades[{i}].createdAt", t.createdAt)
        for i, t in enumerate(answer.trades)
    ]
    # A full page may have older trades beyond it; the next page starts at its oldest.
    return RepairPage(events, len(stamps) >= PAGE, min(stamps, default=None))


def instruments(catalog: Catalog) -> list[str]:
    """The markets the live connections subscribe to."""
    return [s for s in symbols_of(catalog) if market(s) is not None]


SOURCE = RepairSource(
    exchange=EXCHANGE,
    base=BASE,
    request=request,
    parse=parse,
    instruments=instruments,
    reach_ms=None,
    # One request per market and page; spaced so a gap over every market stays gentle.
    pause=0.1,
    newest_first=True,
)
