"""Numbers as people read them in a terminal or an agent's answer.

``format_price`` is the one price formatter of the text outputs (``purpleflea tail`` and
``history``, the MCP tools): plain decimals, never scientific notation, enough significant
digits for a meme coin's price. The dashboard's ``web/js/format.js`` follows the same idea.
"""

from __future__ import annotations

import math

#: Significant digits a price keeps (a fill price rarely has more).
SIGNIFICANT = 6
#: Decimals every price shows, however large ("43,210.50", as the product page's feed).
MIN_DECIMALS = 2
#: Decimals beyond which a price shows as 0 (1e-12 USD is below any exchange's tick).
MAX_DECIMALS = 12


def format_price(price: float) -> str:
    """``43,210.50``, ``3.1416``, ``0.000024208``: thousands separators, at least two
    decimals, up to six significant digits, trailing zeros beyond the second decimal dropped."""
    if not math.isfinite(price):
        return str(price)
    if price == 0:
        return f"{0:.{MIN_DECIMALS}f}"
    magnitude = math.floor(math.log10(abs(price)))
    decimals = min(MAX_DECIMALS, max(MIN_DECIMALS, SIGNIFICANT - 1 - magnitude))
    text = f"{price:,.{decimals}f}"
    whole, _, fraction = text.partition(".")
    fraction = fraction.rstrip("0").ljust(MIN_DECIMALS, "0")
    return f"{whole}.{fraction}"
