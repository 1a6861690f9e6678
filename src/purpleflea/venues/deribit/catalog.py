"""Deribit's futures list: the perpetuals its per-instrument feed subscribes to."""

from __future__ import annotations

from purpleflea.model import ContractKind, Instrument
from purpleflea.venues._catalog import json_body, rows, size
from purpleflea.venues.deribit.constants import EXCHANGE
from purpleflea.venues.venue import CatalogSource


def parse(body: bytes) -> list[Instrument]:
    """``GET api/v2/public/get_instruments?currency=any&kind=future``: the perpetuals.

    Inverse perpetuals (``BTC-PERPETUAL``) trade USD amounts (``contract_size`` USD per
    contract); linear ones (``SOL_USDC-PERPETUAL``) coin amounts.
    """
    found = []
    for row in rows(EXCHANGE, json_body(EXCHANGE, body).get("result"), "result"):
        symbol = str(row.get("instrument_name"))
        if row.get("settlement_period") != "perpetual" or not row.get("is_active", True):
            continue
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
