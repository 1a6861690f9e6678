"""Gap repair: Deribit's public trade history, the liquidation-flagged trades of a window.

``GET /api/v2/public/get_last_trades_by_instrument_and_time?instrument_name=&start_timestamp=
&end_timestamp=&count=&sorting=asc`` (docs.deribit.com, public/get_last_trades_by_instrument_
and_time; public, no auth) answers ``{"jsonrpc":"2.0","result":{"trades":[..],"has_more":b}}``.
Its trades are the ``trades.*`` channels' objects (``trade_id``, ``direction``,
``price``, ``amount``, ``timestamp`` and, on liquidations only, ``liquidation`` ``T``/``M``/
``MT``), so the normalizer's own rule turns them into events with the live ids.
"""

from __future__ import annotations

from urllib.parse import urlencode

import msgspec

from purpleflea.model import NO_INSTRUMENTS, Catalog
from purpleflea.venues._connection import symbols_of
from purpleflea.venues._frame import FrameDecoder, FrameError
from purpleflea.venues.deribit.constants import EXCHANGE
from purpleflea.venues.deribit.normalizer import events_of, trades_decoder
from purpleflea.venues.venue import RepairPage, RepairSource

BASE = "https://www.deribit.com"
PATH = "/api/v2/public/get_last_trades_by_instrument_and_time"
#: The endpoint's largest ``count`` (its docs: 1..1000).
PAGE = 1000


class _Result(msgspec.Struct):
    trades: msgspec.Raw
    has_more: bool = False


class _Answer(msgspec.Struct):
    result: _Result | None = None
    error: dict[str, object] | None = None


_decode = FrameDecoder(EXCHANGE, _Answer)


def request(instrument: str, start_ms: int, end_ms: int) -> str:
    """The path and query of one instrument's trades from ``start_ms`` to ``end_ms``."""
    query = {
        "instrument_name": instrument,
        "start_timestamp": start_ms,
        "end_timestamp": end_ms,
        "count": PAGE,
        "sorting": "asc",
    }
    return f"{PATH}?{urlencode(query)}"


def parse(body: bytes, name: str = "", catalog: Catalog = NO_INSTRUMENTS) -> RepairPage:
    """One answer -> its liquidation events (trades without the flag yield none). Trades name
    their instrument, and amounts are USD or coins as the channel's: ``name`` and ``catalog``
    are not needed."""
    del name, catalog
    answer = _decode(body)
    if answer.result is None:
        raise FrameError(EXCHANGE, f"trade history answer without 'result': {answer.error!r}")
    events = []
    trades = trades_decoder(answer.result.trades)
    for i, trade in enumerate(trades):
        events.extend(events_of(trade, f"result.trades[{i}]"))
    # The next page starts at the last trade, flagged or not: a page of ordinary trades moves on.
    last = max((t.timestamp for t in trades), default=None)
    return RepairPage(events, answer.result.has_more, last)


def instruments(catalog: Catalog) -> list[str]:
    """The catalog's futures, perpetual and dated: the live channel carries them all."""
    return symbols_of(catalog)


SOURCE = RepairSource(
    exchange=EXCHANGE,
    base=BASE,
    request=request,
    parse=parse,
    instruments=instruments,
    # Deribit documents no limit on how far back the trade history reaches.
    reach_ms=None,
    # Public methods are rate limited per IP with a credit pool; a few requests per gap.
    pause=0.05,
)
