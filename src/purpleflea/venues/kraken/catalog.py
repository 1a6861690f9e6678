"""Kraken Futures' instrument list: ``PI_``/``FI_`` inverse and ``PF_``/``FF_`` linear."""

from __future__ import annotations

import logging
from functools import lru_cache

from purpleflea.model import Instrument
from purpleflea.venues._catalog import inverse, json_body, linear, rows, size
from purpleflea.venues._connection import as_text, json_object
from purpleflea.venues.kraken.constants import EXCHANGE
from purpleflea.venues.venue import CatalogSource

log = logging.getLogger(__name__)

#: What :func:`by_documented_rule` marks its instruments with (``Instrument.rule``).
INVERSE_RULE = "Kraken inverse contracts (PI_, FI_): 1 USD per contract"


@lru_cache(maxsize=1024)
def by_documented_rule(product: str) -> Instrument | None:
    """The contract of ``product``, missing from the catalog, by the rule Kraken documents;
    None when no documented rule covers it (its liquidations then stay unsized).

    Every inverse contract has a face value of one USD: "Contract Size & Minimum Order: 1 USD"
    for each ``FI_`` future (support.kraken.com, "Inverse Crypto-Collateral Fixed Maturity
    Contract Specifications", 360022632172), "Min Lot: 1 USD" for each ``PI_`` perpetual
    (support.cryptofacilities.com, "Inverse Crypto-Collateral Perpetual Contract
    Specifications", 360008643453); every recorded instrument list agrees (``contractSize``
    1). The ``PF_``/``FF_`` sizes are base coins and need no rule.
    """
    parts = product.split("_")
    if len(parts) not in (2, 3) or parts[0] not in ("PI", "FI") or not parts[1].endswith("USD"):
        return None
    log.info(
        "%s %s is not in the instrument catalog: sized by the documented rule (%s)",
        EXCHANGE,
        product,
        INVERSE_RULE,
    )
    return Instrument(
        exchange=EXCHANGE, symbol=product, kind="inverse", contract_size=1.0, rule=INVERSE_RULE
    )


def product_id(symbol: str) -> str:
    """The trade feed's ``product_id`` of a symbol as a REST list spells it.

    The lists have spelled symbols all in lower case (``pi_xbtusd``, recorded 2021) while the
    feed names the same product in upper case (``PI_XBTUSD``): such a symbol is upper-cased.
    Any other spelling is Kraken's own and kept: the tokenized-stock perpetuals carry a lower
    case ``x`` in their name (``PF_AAPLxUSD``, base ``AAPLx``, in an instrument list recorded
    2025, nautechsystems/nautilus_trader crates/adapters/kraken/test_data/
    http_futures_instruments.json), which upper-casing turned into a product that is not theirs.
    """
    return symbol.upper() if symbol.islower() else symbol


def parse(body: bytes) -> list[Instrument]:
    """``GET derivatives/api/v3/instruments``: ``PI_``/``FI_`` are inverse USD contracts;
    symbols are keyed by the feed's spelling (:func:`product_id`), which the normalizer looks
    up and the connection subscribes."""
    found = []
    for row in rows(EXCHANGE, json_body(EXCHANGE, body).get("instruments"), "instruments"):
        symbol = product_id(str(row.get("symbol")))
        contract = size(EXCHANGE, symbol, row.get("contractSize", 1))
        if contract is None:
            continue
        if symbol.startswith(("PI_", "FI_")):
            found.append(inverse(EXCHANGE, symbol, contract))
        elif symbol.startswith(("PF_", "FF_")):
            found.append(linear(EXCHANGE, symbol, contract))
    return found


def error_answer(body: bytes) -> str | None:
    """Kraken Futures' error inside a REST answer: v3 answers ``{"result":"success",..,
    "serverTime":..}`` or ``{"result":"error","error":"apiLimitExceeded","serverTime":..}``
    (docs.kraken.com, futures REST: a failed request says ``"result":"error"`` and its reason
    under ``error``), and no list beside it."""
    answer = json_object(body)
    if answer is None or answer.get("result") != "error":
        return None
    return f"result error: {as_text(answer.get('error'))}"


SOURCES = (
    CatalogSource(
        EXCHANGE,
        "https://futures.kraken.com/derivatives/api/v3/instruments",
        parse,
        error=error_answer,
    ),
)
