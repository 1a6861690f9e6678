"""Deribit's futures list, perpetual and dated: the instruments gap repair asks for."""

from __future__ import annotations

from purpleflea.model import ContractKind, Instrument
from purpleflea.venues._catalog import json_body, rows, size
from purpleflea.venues.deribit.constants import EXCHANGE
from purpleflea.venues.deribit.normalizer import market
from purpleflea.venues.venue import CatalogSource


def parse(body: bytes) -> list[Instrument]:
    """``GET api/v2/public/get_instruments?currency=any&kind=future``: every active future.

    Dated futures (``BTC-27DEC24``) are kept beside the perpetuals: the feed carries both and
    their liquidations are sized alike. Inverse ones (``BTC-PERPETUAL``) trade USD amounts
    (``contract_size`` USD per contract); linear ones (``SOL_USDC-PERPETUAL``) coin amounts.
    """
    found = []
    for row in rows(EXCHANGE, json_body(EXCHANGE, body).get("result"), "result"):
        symbol = str(row.get("instrument_name"))
        if not row.get("is_active", True) or market(symbol) is None:
            continue  # expired, or no future we name (a combo)
        contract = size(EXCHANGE, symbol, row.get("contract_size"))
        if contract is None:
            continue
        # instrument_type ("linear"/"reversed") replaced future_type, which older answers
        # carry alone (the list recorded with BTC_USDC-PERPETUAL has only "future_type").
        shape = row.get("instrument_type") or row.get("future_type")
        kind: ContractKind = "linear" if shape == "linear" else "inverse"
        found.append(
            Instrument(exchange=EXCHANGE, symbol=symbol, kind=kind, contract_size=contract)
        )
    return found


SOURCES = (
    CatalogSource(
        EXCHANGE,
        "https://www.deribit.com/api/v2/public/get_instruments?currency=any&kind=future",
        parse,
    ),
)
