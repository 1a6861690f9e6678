"""Numbers as people read them in a terminal, an alert or an agent's answer.

The one owner of how prices and USD amounts print in text (``purpleflea tail``, ``history``
and ``heatmap``, cascade alert messages, heatmap cluster labels, the MCP tools):

- ``format_price``: plain decimals, never scientific notation, enough significant digits for
  a meme coin's price.
- ``format_usd``: an amount in a sentence or a label, ``$3.21M``: three significant digits
  and a short unit (K, M, B, T). ``format_usd_exact``: one event's notional in a feed,
  ``$2,140,000``, whole dollars. ``format_usd_cents``: money to the cent, ``-$254.74`` (a
  backtest's PnL).
- ``step_decimals``: how many decimals a ladder of price levels a bucket apart needs.
- ``read_usd``: the other way, an amount as a person or a model types one (``$100k``,
  ``1.5M``, ``250,000 USD``): the MCP tools' and the commands' ``--min-usd``.
- ``printable``: text someone else chose (an account's name, a request's path) as a log line
  or a terminal shows it safely: characters they would act on are written as escapes.

The dashboard's ``web/js/format.js`` follows the same conventions (``usdShort``, ``usd``).
"""

from __future__ import annotations

import logging
import math
import re

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


def step_decimals(step: float, *, least: int = 0) -> int:
    """The decimals that write ``step`` (a price bucket, > 0) exactly, at least ``least``, at
    most :data:`MAX_DECIMALS`: 0 for 500, 3 for 0.025, 11 for 1e-11. A ladder of price levels
    ``step`` apart, each written with them, reads every level as it is."""
    decimals = next(
        (d for d in range(MAX_DECIMALS) if abs(round(step, d) - step) < step * 1e-6),
        MAX_DECIMALS,
    )
    return max(least, decimals)


#: Short units of :func:`format_usd`, largest first.
_USD_UNITS = ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "K"))


def format_usd(amount: float) -> str:
    """``$3.21M``, ``$850K``, ``$45.3K``, ``$1.25B``, ``$950``, ``-$1.2K``: three significant
    digits (trailing zeros dropped) and a short unit; below $1,000, whole dollars (under 50
    cents, two significant digits: ``$0.0061``)."""
    if not math.isfinite(amount):
        return f"${amount}"
    sign = "-" if amount < 0 else ""
    value = abs(amount)
    for unit, suffix in _USD_UNITS:
        # 999,600 rounds to 1,000K at three digits: it is $1M.
        if value >= unit * 0.9995:
            scaled = value / unit
            digits = f"{scaled:,.0f}" if scaled >= 999.5 else f"{scaled:.3g}"
            return f"{sign}${digits}{suffix}"
    return f"{sign}${_whole_or_cents(value)}"


#: Commas only as digit grouping, the last group three digits ("250,000", lakh "1,50,000"):
#: a decimal comma ("1,5M", 1.5 million in much of Europe) read as 15 million, silently.
_TYPED_USD = re.compile(r"\$?\s*(\d+(?:(?:,\d{2,3})*,\d{3})?(?:\.\d+)?)\s*([kmbt])?(?:\s*usd)?")
#: The units format_usd writes, in any case.
_TYPED_UNITS = {"k": 1e3, "m": 1e6, "b": 1e9, "t": 1e12}


def read_usd(text: str) -> float:
    """An amount of USD as typed: a number as ``float`` reads it (``100000``, ``1e6``), or one
    such as ``$100k``, ``1.5M``, ``250,000 USD`` (what :func:`format_usd` writes reads back).
    The sign is the caller's to judge: ``-5`` is -5.0.

    Raises ValueError naming ``text`` and the forms taken; a value that is no finite number
    (``nan``, ``inf``) is one of them."""
    try:
        number = float(text)
    except ValueError:
        pass
    else:
        if math.isfinite(number):
            return number
    found = _TYPED_USD.fullmatch(text.strip().lower())
    if found is None:
        raise ValueError(
            f"{text!r} is not an amount of USD: give a number (100000) or one such as "
            "'$100k', '1.5M' (a point for decimals, commas only between thousands)"
        )
    amount = float(found.group(1).replace(",", "")) * _TYPED_UNITS.get(found.group(2) or "", 1.0)
    if not math.isfinite(amount):  # 400 digits: float() said inf, the pattern took them
        raise ValueError(f"{text!r} is not an amount of USD: more than a float holds")
    return amount


def _whole_or_cents(value: float) -> str:
    """``value`` (>= 0) in whole dollars, or, when that would be 0, with two significant digits
    (``0.0061``): a real liquidation of $0.006 (ONTUSDT, 0.1 ONT) printed as ``$0``, which
    reads as nothing at all."""
    if value > 0 and round(value) == 0:
        if value >= 1e-4:  # where "g" still writes plain decimals
            return f"{value:.2g}"
        return f"{value:.{MAX_DECIMALS}f}".rstrip("0").rstrip(".")
    return f"{value:,.0f}"


def format_usd_exact(amount: float) -> str:
    """``$2,140,000``: whole dollars with thousands separators (one event's notional); under
    50 cents two significant digits, ``$0.0061``, not ``$0``."""
    if not math.isfinite(amount):
        return f"${amount}"
    sign = "-" if amount < 0 else ""
    return f"{sign}${_whole_or_cents(abs(amount))}"


def printable_json(text: str) -> str:
    """A JSON document's text with every character that is not printable written as a JSON
    escape (``\u202e``; past U+FFFF its surrogate pair): the same document to a decoder, and
    nothing a terminal acts on or hides (the encoder escapes only the controls below U+0020)."""
    if text.isprintable():
        return text
    out = []
    for c in text:
        if c.isprintable():
            out.append(c)
            continue
        units = c.encode("utf-16-be")
        for i in range(0, len(units), 2):  # one code unit, or a surrogate pair
            out.append(f"\\u{int.from_bytes(units[i : i + 2], 'big'):04x}")
    return "".join(out)


def format_usd_cents(amount: float) -> str:
    """``$1,234.50``, ``-$254.74``: dollars and cents with thousands separators, the sign
    before the dollar (a backtest's PnL, fees and drawdown; ``$-254.74`` read oddly)."""
    if not math.isfinite(amount):
        return f"${amount}"
    sign = "-" if amount < 0 and round(amount, 2) != 0 else ""
    return f"{sign}${abs(amount):,.2f}"


def printable(text: str) -> str:
    """``text`` with every character that is not printable (line breaks, ESC and the other
    controls, invisible format characters such as a right-to-left override) written as its
    Python escape (``\\r``, ``\\x1b``, ``\\u202e``): a name or path a stranger chose must
    not start a forged log line or drive the operator's terminal."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


class PrintableLog(logging.Filter):
    """A log handler's filter writing each record's message with :func:`printable`: venues'
    words reach the server's log (an exchange's refusal text, a symbol it lists) and so do
    files' (an import's rows), and a line break or ESC in them forged log lines or drove the
    operator's terminal. A traceback (``exc_info``) is formatted apart and keeps its lines."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:
            # The handler's emit reports it, as logging does; raised here, it reached the
            # call site (logging never raises there).
            return True
        if not message.isprintable():
            record.msg, record.args = printable(message), None
        return True


def log_printably() -> None:
    """:class:`PrintableLog` on every handler of the root logger (``logging.basicConfig``'s)."""
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, PrintableLog) for f in handler.filters):
            handler.addFilter(PrintableLog())
