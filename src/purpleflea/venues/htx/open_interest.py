"""HTX's swaps: one side's open interest in coins, and the last trade price as the mark.

Open interest comes from ``swap_open_interest`` without a contract code (every swap), its
``amount`` being coins ("Position quantity(Currency)"; the linear example has 78.696 BTC for
78,696 BTC-USDT contracts of 0.001 BTC). HTX counts the sides differently per margin (its
API pages as mirrored in rosssaunders/coincise, 2025-11-30):

- USDT-margined ``linear-swap-api/v1/swap_open_interest``: ``volume`` and ``amount`` are the
  "Sum of both buy and sell sides", so half of ``amount`` is one side;
- coin-margined ``swap-api/v1/swap_open_interest``: ``volume`` and ``amount`` are "Single
  side", read as they are.

The linear half is the docs' word against recorded answers, and unsettled. ``volume`` counts
whole contracts, and a plain count of both sides is twice the longs' whole count, always even;
yet both recorded BTC-USDT answers are odd: 3,063,121 (2020-12-01, tardis-node's mapper test,
polled from this endpoint) and 31,034,739 (the 2026-08-19 capture in tests/venues). The phrase
is not idle on HTX's pages, though: trade ``amount``, also "Sum of both buy and sell sides",
looks doubled, every recorded HTX trade amount in tardis-node's tests being even (62, 8, 80,
6, 30, 2, 8, 20 contracts, 2019-2022; about one chance in 256 if sides were not doubled),
while recorded liquidation ``volume``, which the pages do not so label, is often odd (227,
319, 231, 3). Both cannot be plain: a count of both sides that comes out odd leaves some
account out (HTX's takeover of liquidated positions, say), which parity cannot tell from one
side. Until a position count or an HTX statement settles it, the documented halving stays.

HTX documents no bulk mark price over REST: its mark is a kline per contract
(``linear_swap_mark_price_kline?contract_code=``, one request each). The bulk tickers
(``v2/linear-swap-ex/market/detail/batch_merged``, ``v2/swap-ex/market/detail/batch_merged``,
every swap without a contract code) give ``close``, "the latest order price", which stands in
for the mark (a live capture of 2026-08-19 had 306 rows in both bulk lists, and BTC-USDT's last
price 0.3 % from the price HTX values its open interest at). Both lists are swaps only
(``business_type`` defaults to swap), so the dated futures are not polled. A bundled code's
coins and price are turned into real coins as its liquidations are
(``_open_interest.in_real_coins``).
"""

from __future__ import annotations

from purpleflea.model import Catalog
from purpleflea.venues._open_interest import as_list, in_real_coins, json_body, num, reading
from purpleflea.venues.htx.catalog import error_answer
from purpleflea.venues.htx.constants import EXCHANGE
from purpleflea.venues.htx.normalizer import market
from purpleflea.venues.venue import PollSource, Reading

BASE_URL = "https://api.hbdm.com"


def _readings(body: bytes, sides: float) -> list[Reading]:
    """The merged ``data`` (open interest) and ``ticks`` (tickers) of one margin's swaps;
    ``sides`` is how many sides ``amount`` counts."""
    merged = json_body(EXCHANGE, body)
    marks = {
        tick.get("contract_code"): tick.get("close")
        for tick in as_list(EXCHANGE, merged.get("ticks"))
    }
    found = []
    for row in as_list(EXCHANGE, merged.get("data")):
        code = row.get("contract_code")
        amount = num(row.get("amount"))
        found_reading = reading(code, marks.get(code), None if amount is None else amount / sides)
        name = market(found_reading.symbol) if found_reading else None
        if found_reading is None or name is None:
            continue
        found.append(in_real_coins(found_reading, name.multiplier))
    return found


def parse_linear(body: bytes, instruments: Catalog) -> list[Reading]:
    """USDT-margined swaps: ``amount`` counts both sides, halved."""
    del instruments
    return _readings(body, 2.0)


def parse_coin_margined(body: bytes, instruments: Catalog) -> list[Reading]:
    """Coin-margined swaps: ``amount`` is one side already."""
    del instruments
    return _readings(body, 1.0)


def sources(base_url: str = BASE_URL) -> tuple[PollSource, ...]:
    """Both margins' swaps, each open interest merged with its tickers."""
    return (
        PollSource(
            EXCHANGE,
            (
                f"{base_url}/linear-swap-api/v1/swap_open_interest",
                f"{base_url}/v2/linear-swap-ex/market/detail/batch_merged",
            ),
            parse_linear,
            error=error_answer,
        ),
        PollSource(
            EXCHANGE,
            (
                f"{base_url}/swap-api/v1/swap_open_interest",
                f"{base_url}/v2/swap-ex/market/detail/batch_merged",
            ),
            parse_coin_margined,
            error=error_answer,
        ),
    )


SOURCES = sources()
