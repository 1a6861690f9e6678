"""Gap repair: HTX's public liquidation orders of the last 90 days, contract by contract.

``GET /linear-swap-api/v3/swap_liquidation_orders`` (USDT-margined swaps and futures) and
``GET /swap-api/v3/swap_liquidation_orders`` (coin-margined swaps), "[General] Query
Liquidation Orders(New)" in HTX's futures API docs (htx.com/en-us/opend/newApiPages; no
signature). Parameters: ``contract`` (required), ``trade_type`` (required; 0: all),
``start_time``/``end_time`` (ms, by creation time: at most a 2-hour window, within the past
90 days), ``direct`` (``next``: oldest first; default ``prev``), ``from_id`` (with ``next``,
the largest ``query_id`` of the last answer). Rate limit: 240 requests per 3 s per IP, shared
with HTX's other public reference endpoints. The page size is not documented, so a page is
followed by the next (``from_id``) until one comes back empty.

Its answer ``{"code":200,"msg":"","data":[{query_id,contract_code,symbol,direction,offset,
volume,price,created_at,amount,trade_turnover,pair,business_type}],"ts":..}`` carries every
field the ``liquidation_orders`` topic does, so the topic's own rule
(:func:`~purpleflea.venues.htx.normalizer.items_events`) gives the same events with the same
ids (contract, ``created_at``, direction, volume, price: numbers read as numbers, so ``10``
and ``10.0`` spell the same id) and a repaired copy of an order the topic pushed
deduplicates. Both are documented with the bankruptcy ``price``.
"""

from __future__ import annotations

from urllib.parse import urlencode

import msgspec

from purpleflea.model import NO_INSTRUMENTS, Catalog
from purpleflea.venues._frame import FrameDecoder, FrameError
from purpleflea.venues.htx.constants import EXCHANGE
from purpleflea.venues.htx.normalizer import Item, items_events, market
from purpleflea.venues.venue import RepairPage, RepairSource

BASE = "https://api.hbdm.com"
LINEAR_PATH = "/linear-swap-api/v3/swap_liquidation_orders"
COIN_PATH = "/swap-api/v3/swap_liquidation_orders"
#: "query window shift should be within past 90 days".
REACH_MS = 90 * 24 * 3600 * 1000
#: "maximum query window size is 2 hours".
WINDOW_MS = 2 * 3600 * 1000


class _Row(Item):
    query_id: int = 0


class _Answer(msgspec.Struct):
    code: int = 0
    msg: str = ""
    data: list[_Row] | None = None
    err_code: int | None = None
    err_msg: str = ""


_decode = FrameDecoder(EXCHANGE, _Answer)


def _path(contract: str) -> str:
    # Coin-margined swaps are quoted in USD (BTC-USD); the rest are USDT-margined.
    return COIN_PATH if contract.endswith("-USD") else LINEAR_PATH


def request(contract: str, start_ms: int, end_ms: int) -> str:
    """The path and query of ``contract``'s liquidation orders in the window, oldest first."""
    query = {
        "contract": contract,
        "trade_type": 0,
        "start_time": start_ms,
        "end_time": end_ms,
        "direct": "next",
    }
    return f"{_path(contract)}?{urlencode(query)}"


def request_after(contract: str, start_ms: int, end_ms: int, query_id: str) -> str:
    """The page after the one whose largest ``query_id`` is ``query_id``."""
    return f"{request(contract, start_ms, end_ms)}&{urlencode({'from_id': query_id})}"


def parse(body: bytes, name: str = "", catalog: Catalog = NO_INSTRUMENTS) -> RepairPage:
    """One answer -> its events, sized from the catalog as the topic's are (rows name their
    contract: ``name`` is not needed); a non-empty page may have more after it."""
    del name
    answer = _decode(body)
    if answer.code != 200 or answer.data is None:
        why = answer.msg or answer.err_msg or f"err_code={answer.err_code}"
        raise FrameError(EXCHANGE, f"liquidation orders answer code={answer.code}: {why}")
    rows = answer.data
    events = items_events(list(rows), "data", catalog)
    cursor = str(max(row.query_id for row in rows)) if rows else None
    return RepairPage(events, bool(rows), cursor=cursor)


def instruments(catalog: Catalog) -> list[str]:
    """The catalog's swaps and USDT-margined futures (``public.*`` pushes every contract;
    coin-margined delivery futures have another API and are not asked)."""
    return sorted(s for s in catalog if "-" in s and market(s) is not None)


SOURCE = RepairSource(
    exchange=EXCHANGE,
    base=BASE,
    request=request,
    parse=parse,
    instruments=instruments,
    reach_ms=REACH_MS,
    # 240 requests per 3 s per IP, shared: one every 0.05 s is a quarter of it.
    pause=0.05,
    request_after=request_after,
    max_window_ms=WINDOW_MS,
)
