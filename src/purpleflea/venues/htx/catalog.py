"""HTX's contract lists: linear swaps and futures, coin-margined swaps and futures."""

from __future__ import annotations

from purpleflea.model import Instrument
from purpleflea.venues._catalog import inverse, json_body, linear, rows, size
from purpleflea.venues._connection import as_text, json_object
from purpleflea.venues.htx.constants import EXCHANGE
from purpleflea.venues.venue import CatalogSource

#: Coin-margined delivery futures ("Get Contract Info"): the contracts of the ``notification``
#: endpoint's liquidation topic.
FUTURES_URL = "https://api.hbdm.com/api/v1/contract_contract_info"


def parse(body: bytes) -> list[Instrument]:
    """``swap_contract_info`` and ``contract_contract_info``: ``contract_size`` per contract.

    Linear (``BTC-USDT``, ``BTC-USDT-211231``): coins per contract. Coin-margined swaps
    (``BTC-USD``) and delivery futures (``BTC210813``, a code without a dash): USD face value
    ("Contract Value (USD of one contract)", 100 for BTC, 10 for ETH in HTX's example).
    """
    found = []
    for row in rows(EXCHANGE, json_body(EXCHANGE, body).get("data"), "data"):
        symbol = str(row.get("contract_code"))
        contract = size(EXCHANGE, symbol, row.get("contract_size"))
        if contract is None:
            continue
        pair = symbol.split("-")
        if len(pair) == 1 or pair[1] == "USD":
            found.append(inverse(EXCHANGE, symbol, contract))
        else:
            found.append(linear(EXCHANGE, symbol, contract))
    return found


def error_answer(body: bytes) -> str | None:
    """HTX's error inside a REST answer: its futures and swap v1/v2 answers carry ``"status":
    "ok"`` or ``"status":"error"`` with ``err_code`` and ``err_msg`` (``err-code`` and
    ``err-msg`` on its older pages; the envelope of every HTX REST answer, HTTP 200 either
    way), and no ``data`` or ``ticks`` list then: merged with a good body, the error would
    leave only that body's rows."""
    answer = json_object(body)
    if answer is None or answer.get("status") != "error":
        return None
    code = answer.get("err_code", answer.get("err-code"))
    said = answer.get("err_msg", answer.get("err-msg"))
    return f"status error {as_text(code)}: {as_text(said)}"


SOURCES = (
    # business_type defaults to swap ("[General] Query Contract Info"); the liquidation topic
    # also carries the USDT futures (BTC-USDT-211231), which "all" lists with the swaps.
    CatalogSource(
        EXCHANGE,
        "https://api.hbdm.com/linear-swap-api/v1/swap_contract_info?business_type=all",
        parse,
        error=error_answer,
    ),
    CatalogSource(
        EXCHANGE,
        "https://api.hbdm.com/swap-api/v1/swap_contract_info",
        parse,
        error=error_answer,
    ),
    CatalogSource(EXCHANGE, FUTURES_URL, parse, error=error_answer),
)
