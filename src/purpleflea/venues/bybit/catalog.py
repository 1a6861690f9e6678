"""Bybit's instrument lists: the symbols its per-symbol feed subscribes to."""

from __future__ import annotations

from purpleflea.model import ContractKind, Instrument
from purpleflea.venues._catalog import coded_error, json_body, rows
from purpleflea.venues._paging import with_query
from purpleflea.venues.bybit.constants import EXCHANGE
from purpleflea.venues.venue import CatalogSource

_KINDS: dict[str, ContractKind] = {
    "LinearPerpetual": "linear",
    "LinearFutures": "linear",
    "InversePerpetual": "inverse",
    "InverseFutures": "inverse",
}


#: Statuses whose contracts can hold positions, so be liquidated: ``PreLaunch`` is a pre-market
#: perpetual (Bybit's instruments page: "when status=PreLaunch, it returns Pre-Market
#: contracts"), traded with leverage from its continuous-trading phase on while its status
#: stays ``PreLaunch`` (the page's example: BIOUSDT, ``curAuctionPhase: ContinuousTrading``).
#: Subscribing before then is harmless: Bybit's orderbook and trade topic pages say a PreLaunch
#: contract's feed is silent "until ContinuousTrading stage", not refused.
_LISTED = ("Trading", "PreLaunch")


def parse(body: bytes) -> list[Instrument]:
    """``GET v5/market/instruments-info?category=linear|inverse``: ``result.list[]``.

    Only instruments that trade (``Trading``, ``PreLaunch``) are kept: the feed subscribes to
    each one. Sizes are in coins (linear) or USD (inverse), so the contract size is 1.
    """
    result = json_body(EXCHANGE, body).get("result")
    listed = rows(EXCHANGE, result.get("list") if isinstance(result, dict) else None, "result.list")
    found = []
    for row in listed:
        kind = _KINDS.get(str(row.get("contractType")))
        if kind is not None and row.get("status") in _LISTED:
            found.append(
                Instrument(
                    exchange=EXCHANGE, symbol=str(row["symbol"]), kind=kind, contract_size=1.0
                )
            )
    return found


def next_page(url: str, body: bytes) -> str | None:
    """The page after ``url``: its ``result.nextPageCursor`` as ``cursor``; None after a page
    with no rows or no cursor.

    Bybit answers at most ``limit`` rows (1..1000, default 500) and says "there are now more
    than 500 linear symbols ... you will need to use cursor for pagination" (instruments page,
    bybit-exchange/docs, 2026-07). Its example of a one-row answer still carries a cursor
    (``first%3DBIOUSDT%26last%3DBIOUSDT``), so a cursor alone does not prove more rows: the
    list ends at the first empty page.
    """
    result = json_body(EXCHANGE, body).get("result")
    if not isinstance(result, dict) or not result.get("list"):
        return None
    cursor = result.get("nextPageCursor")
    return with_query(url, "cursor", cursor) if isinstance(cursor, str) and cursor else None


def error_answer(body: bytes) -> str | None:
    """Bybit's error inside a REST answer: v5 answers ``{"retCode":0,"retMsg":"OK",
    "result":{..},"retExtInfo":{},"time":..}`` and a non-zero ``retCode`` is an error
    (bybit-exchange.github.io/docs/v5/error: 10000 "Server Timeout", 10001 "Request parameter
    error", 10006 "Too many visits"), answered with HTTP 200; only an IP over its limit gets
    HTTP 403. Its ``result`` may still hold a ``list`` of nothing."""
    return coded_error(body, "retCode", "retMsg")


_BASE = "https://api.bybit.com/v5/market/instruments-info?limit=1000&category="
SOURCES = (
    CatalogSource(EXCHANGE, f"{_BASE}linear", parse, next_page, error=error_answer),
    CatalogSource(EXCHANGE, f"{_BASE}inverse", parse, next_page, error=error_answer),
    # The default status filter lists Trading symbols only; pre-market ones are asked apart
    # (linear only: pre-market perpetuals are USDT contracts).
    CatalogSource(
        EXCHANGE, f"{_BASE}linear&status=PreLaunch", parse, next_page, error=error_answer
    ),
)
