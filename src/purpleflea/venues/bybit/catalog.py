"""Bybit's instrument lists: the symbols its per-symbol feed subscribes to."""

from __future__ import annotations

from purpleflea.model import ContractKind, Instrument
from purpleflea.venues._catalog import json_body, rows
from purpleflea.venues.bybit.constants import EXCHANGE
from purpleflea.venues.venue import CatalogSource

_KINDS: dict[str, ContractKind] = {
    "LinearPerpetual": "linear",
    "LinearFutures": "linear",
    "InversePerpetual": "inverse",
    "InverseFutures": "inverse",
}


def parse(body: bytes) -> list[Instrument]:
    """``GET v5/market/instruments-info?category=linear|inverse``: ``result.list[]``.

    Only instruments with ``status: Trading`` are kept: the feed subscribes to each one.
    Sizes are in coins (linear) or USD (inverse), so the contract size is 1.
    """
    result = json_body(EXCHANGE, body).get("result")
    listed = rows(EXCHANGE, result.get("list") if isinstance(result, dict) else None, "result.list")
    found = []
    for row in listed:
        kind = _KINDS.get(str(row.get("contractType")))
        if kind is not None and row.get("status") == "Trading":
            found.append(
                Instrument(
                    exchange=EXCHANGE, symbol=str(row["symbol"]), kind=kind, contract_size=1.0
                )
            )
    return found


_BASE = "https://api.bybit.com/v5/market/instruments-info?category="
SOURCES = (
    CatalogSource(EXCHANGE, f"{_BASE}linear&limit=1000", parse),
    CatalogSource(EXCHANGE, f"{_BASE}inverse&limit=1000", parse),
)
