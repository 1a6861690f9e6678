"""OKX's open interest and mark prices (two endpoints, merged into one body).

``oiCcy`` is documented as "Open interest in number of coin" (``oi`` in contracts); OKX does
not say whether a long and its short count once or twice. It is read as one side, the
standard count, as Binance's is; BTC on 2026-09-16 (a public cross-check of exchange APIs)
was 2.14 B USD at OKX against Binance's 8.14 B and Bybit's one side of 2.17 B.
"""

from __future__ import annotations

from purpleflea.model import Catalog
from purpleflea.venues._open_interest import as_list, json_body, keep, reading
from purpleflea.venues.okx.catalog import error_answer
from purpleflea.venues.okx.constants import EXCHANGE
from purpleflea.venues.venue import PollSource, Reading


def parse(body: bytes, instruments: Catalog) -> list[Reading]:
    """``GET api/v5/public/open-interest`` merged with ``mark-price``: both bodies, one list.

    ``oiCcy`` is open interest in coins, so no contract size is needed; ``markPx`` rows come
    from the mark-price endpoint and are joined by ``instId``.
    """
    del instruments
    rows = as_list(EXCHANGE, json_body(EXCHANGE, body).get("data"))
    marks = {row.get("instId"): row.get("markPx") for row in rows if "markPx" in row}
    return keep(
        [
            reading(row.get("instId"), marks.get(row.get("instId")), row.get("oiCcy"))
            for row in rows
            if "oiCcy" in row
        ]
    )


SOURCES = (
    PollSource(
        EXCHANGE,
        (
            "https://www.okx.com/api/v5/public/open-interest?instType=SWAP",
            "https://www.okx.com/api/v5/public/mark-price?instType=SWAP",
        ),
        parse,
        error=error_answer,
    ),
)
