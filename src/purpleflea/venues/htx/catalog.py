"""HTX's contract lists: linear swaps and futures, coin-margined swaps."""

from __future__ import annotations

from purpleflea.model import Instrument
from purpleflea.venues._catalog import inverse, json_body, linear, rows, size
from purpleflea.venues.htx.constants import EXCHANGE
from purpleflea.venues.venue import CatalogSource


def parse(body: bytes) -> list[Instrument]:
    """``swap_contract_info`` (linear and coin-margined): ``contract_size`` per contract.

    Linear (``BTC-USDT``): coins per contract. Coin-margined (``BTC-USD``): USD face value.
    """
    found = []
    for row in rows(EXCHANGE, json_body(EXCHANGE, body).get("data"), "data"):
        symbol = str(row.get("contract_code"))
        contract = size(EXCHANGE, symbol, row.get("contract_size"))
        if contract is None:
            continue
        pair = symbol.split("-")
        if len(pair) >= 2 and pair[1] == "USD":
            found.append(inverse(EXCHANGE, symbol, contract))
        else:
            found.append(linear(EXCHANGE, symbol, contract))
    return found


SOURCES = (
    # business_type defaults to swap ("[General] Query Contract Info"); the liquidation topic
    # also carries the USDT futures (BTC-USDT-211231), which "all" lists with the swaps.
    CatalogSource(
        EXCHANGE,
        "https://api.hbdm.com/linear-swap-api/v1/swap_contract_info?business_type=all",
        parse,
    ),
    CatalogSource(EXCHANGE, "https://api.hbdm.com/swap-api/v1/swap_contract_info", parse),
)
