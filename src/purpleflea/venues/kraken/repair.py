"""Gap repair: Kraken Futures' public trade history, its ``liquidation`` trades.

``GET https://futures.kraken.com/derivatives/api/v3/history?symbol=PF_XBTUSD&lastTime=``
(docs.kraken.com, Futures REST "Get trade history"; public, no auth): "the most recent 100
trades prior to the specified ``lastTime`` value up to past 7 days or recent trading engine
restart (whichever is sooner)", sorted newest first, so the window is paged backwards. The
docs give this public endpoint no rate-limit cost; one request every 0.2 s is kept.

Its answer ``{"result":"success","history":[{price,side,size,time,trade_id,type,uid,..}],
"serverTime":..}`` lists every trade typed as the ``trade`` feed types them (``fill``,
``liquidation``, ...), with the feed's ``side`` (taker), ``price`` and ``uid``; ``size``
(a string) is the feed's ``qty`` and ``time`` an ISO-8601 time where the feed sends epoch ms.
Each trade is read into the feed's own trade and given to the feed's rule
(:func:`~purpleflea.venues.kraken.normalizer.trade_event`), so ids are ``uid`` as live. The REST
docs leave ``uid`` undescribed; that it is the feed's trade ``uid`` (same name, both the
trade's unique id) is the one assumption dedup rests on, to check against a live capture.
"""

from __future__ import annotations

from urllib.parse import urlencode

import msgspec

from purpleflea.model import NO_INSTRUMENTS, Catalog, VenueLiquidation
from purpleflea.venues._connection import symbols_of
from purpleflea.venues._frame import FrameDecoder, FrameError, iso_ms, ms_iso, non_negative
from purpleflea.venues.kraken.constants import EXCHANGE
from purpleflea.venues.kraken.normalizer import Trade, market, trade_event
from purpleflea.venues.venue import RepairPage, RepairSource

BASE = "https://futures.kraken.com"
PATH = "/derivatives/api/v3/history"
#: "the most recent 100 trades".
PAGE = 100
#: "up to past 7 days or recent trading engine restart (whichever is sooner)".
REACH_MS = 7 * 24 * 3600 * 1000


class _Row(msgspec.Struct):
    price: float
    time: str
    uid: str = ""
    side: str = ""
    size: str | float = 0.0
    type: str = ""


class _Answer(msgspec.Struct):
    result: str = ""
    history: list[_Row] | None = None
    error: str = ""


_decode = FrameDecoder(EXCHANGE, _Answer)


def request(symbol: str, start_ms: int, end_ms: int) -> str:
    """The path and query of ``symbol``'s 100 trades before ``end_ms`` (inclusive), newest
    first; ``start_ms`` is where the caller stops paging."""
    del start_ms
    # ``lastTime`` is exclusive ("prior to"); one more ms keeps the end's own trades.
    return f"{PATH}?{urlencode({'symbol': symbol, 'lastTime': ms_iso(end_ms + 1)})}"


def parse(body: bytes, symbol: str, catalog: Catalog = NO_INSTRUMENTS) -> RepairPage:
    """One answer -> ``symbol``'s liquidation trades, sized as the feed's are."""
    answer = _decode(body)
    if answer.result != "success" or answer.history is None:
        raise FrameError(EXCHANGE, f"trade history answer {answer.result!r}: {answer.error!r}")
    events: list[VenueLiquidation] = []
    stamps = []
    for i, row in enumerate(answer.history):
        where = f"history[{i}]."
        ts = iso_ms(EXCHANGE, f"{where}time", row.time)
        stamps.append(ts)
        if row.type != "liquidation":
            continue  # an ordinary fill only moves the page on
        qty = non_negative(EXCHANGE, f"{where}size", row.size)
        trade = Trade(row.uid, row.side, row.type, ts, qty, row.price, symbol)
        event = trade_event(trade, symbol, where, False, catalog)
        if event is not None:
            events.append(event)
    # A full page may have older trades beyond it; the next page starts at its oldest.
    return RepairPage(events, len(stamps) >= PAGE, min(stamps, default=None))


def instruments(catalog: Catalog) -> list[str]:
    """The products the live connection subscribes to."""
    return [s for s in symbols_of(catalog) if market(s) is not None]


SOURCE = RepairSource(
    exchange=EXCHANGE,
    base=BASE,
    request=request,
    parse=parse,
    instruments=instruments,
    reach_ms=REACH_MS,
    pause=0.2,
    newest_first=True,
)
