"""Deribit's futures: mark price and open interest, one currency's book summaries a request.

``GET api/v2/public/get_book_summary_by_currency?currency=X&kind=future`` lists every future
and perpetual of one currency with ``mark_price`` and ``open_interest``, "the total amount of
outstanding contracts in the corresponding amount units. For perpetual and inverse futures the
amount is in USD units. For options and linear futures ... the underlying base currency coin"
(the API reference as mirrored in rosssaunders/coincise, 2025-11-30; its "real example" has
BTC-PERPETUAL at 183,180 USD with a mark of 3,579.73). As with trade amounts (the normalizer's
docstring), linear perpetuals (``SOL_USDC-PERPETUAL``) count coins and inverse ones
(``BTC-PERPETUAL``, ``BTC-27DEC24``) USD, turned into coins at the mark.
"Outstanding contracts" is read as one side, the usual count of open interest (each contract
has one long and one short holder); Deribit does not say it more plainly. Parity, which settles
Kraken's (``kraken/open_interest.py``), does not settle it here: recorded
``ticker.BTC-PERPETUAL.raw`` pushes of 2019-08-01 and 2019-10-01 (tardis-node's mapper test)
carry ``open_interest`` 66,128,281 and 84,844,461 USD, both odd, which a count of both sides
of whole contracts could not be; but neither is a multiple of the 10 USD contract either (its
size in 2026; 2019's not checked), so the figure may not be a plain count of whole contracts
and its parity proves nothing.

The method's ``currency`` takes one of ``BTC ETH USDC USDT EURR`` (no ``any``), so each is
asked in turn and the answers merged; ``EURR``, a euro stablecoin, is left out: a price in it
is not a USD mark.
"""

from __future__ import annotations

from purpleflea.model import Catalog
from purpleflea.venues._open_interest import as_list, in_real_coins, json_body, reading
from purpleflea.venues.deribit.constants import EXCHANGE
from purpleflea.venues.deribit.normalizer import market
from purpleflea.venues.venue import PollSource, Reading

BASE_URL = "https://www.deribit.com"
#: The currencies whose futures are quoted in USD or a USD stablecoin.
CURRENCIES = ("BTC", "ETH", "USDC", "USDT")


def parse(body: bytes, instruments: Catalog) -> list[Reading]:
    """The merged ``result`` lists of ``get_book_summary_by_currency``: ``instrument_name``,
    ``mark_price``, ``open_interest`` (USD for inverse, coins for linear)."""
    del instruments
    found = []
    for row in as_list(EXCHANGE, json_body(EXCHANGE, body).get("result")):
        found_reading = reading(
            row.get("instrument_name"), row.get("mark_price"), row.get("open_interest")
        )
        named = market(found_reading.symbol) if found_reading else None
        if found_reading is None or named is None:
            continue  # no mark or open interest, or an option or combo
        name, linear = named
        if not linear:
            found_reading = found_reading._replace(
                open_interest=found_reading.open_interest / found_reading.mark_price
            )
        found.append(in_real_coins(found_reading, name.multiplier))
    return found


def source(base_url: str = BASE_URL, currencies: tuple[str, ...] = CURRENCIES) -> PollSource:
    """One request per currency, merged into one body."""
    return PollSource(
        EXCHANGE,
        tuple(
            f"{base_url}/api/v2/public/get_book_summary_by_currency?currency={currency}&kind=future"
            for currency in currencies
        ),
        parse,
    )


SOURCES = (source(),)
