"""OKX's instrument list: contract sizes of its swaps and dated futures."""

from __future__ import annotations

from purpleflea.model import Instrument
from purpleflea.venues._catalog import json_body, rows, size
from purpleflea.venues.okx.constants import EXCHANGE
from purpleflea.venues.venue import CatalogSource


def parse(body: bytes) -> list[Instrument]:
    """``GET api/v5/public/instruments``: one contract is ``ctVal * ctMult`` of ``ctValCcy``.

    ``ctType`` linear means ``ctValCcy`` is the base coin; inverse means it is USD.
    """
    found = []
    for row in rows(EXCHANGE, json_body(EXCHANGE, body).get("data"), "data"):
        symbol = str(row.get("instId"))
        kind = row.get("ctType")
        contract = size(EXCHANGE, symbol, row.get("ctVal"))
        multiplier = size(EXCHANGE, symbol, row.get("ctMult") or 1)
        if kind not in ("linear", "inverse") or contract is None or multiplier is None:
            continue
        found.append(
            Instrument(
                exchange=EXCHANGE, symbol=symbol, kind=kind, contract_size=contract * multiplier
            )
        )
    return found


SOURCES = (
    CatalogSource(EXCHANGE, "https://www.okx.com/api/v5/public/instruments?instType=SWAP", parse),
    CatalogSource(
        EXCHANGE, "https://www.okx.com/api/v5/public/instruments?instType=FUTURES", parse
    ),
)
