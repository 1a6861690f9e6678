"""The MCP argument readers on their own: what a model writes, read as the tool's type, and
what they refuse rather than misread."""

from __future__ import annotations

import pytest
from pydantic import TypeAdapter, ValidationError

from purpleflea.mcp import arguments
from purpleflea.mcp.answers import MarketArg


@pytest.mark.parametrize(
    ("sent", "usd"),
    [
        ("$100k", 100_000.0),
        ("1.5M", 1_500_000.0),
        ("250,000 USD", 250_000.0),
        ("2,500,000", 2_500_000.0),
        ("$1,250.50", 1_250.5),
        ("100000", 100_000.0),
        ("1,50,000", 150_000.0),  # lakh grouping: the last group is still three digits
    ],
)
def test_usd_reads_amounts_as_written(sent: str, usd: float) -> None:
    assert arguments.usd(sent) == usd


@pytest.mark.parametrize("sent", ["1,5M", "100,00", "12,5k", "1,000,00"])
def test_usd_refuses_a_comma_that_is_no_thousands_separator(sent: str) -> None:
    # A decimal comma ("1,5M", 1.5 million in much of Europe) read as 15 million, silently.
    with pytest.raises(ValueError, match="not an amount of USD"):
        arguments.usd(sent)


def test_end_ms_in_seconds_is_refused_naming_end_ms_as_a_float_too() -> None:
    # 1765000000.0 (a JSON number with a point) skipped the check, became the int
    # 1765000000 (January 1970) and was refused by the server as a 'start' never sent.
    with pytest.raises(ValueError, match="end_ms 1765000000 looks like seconds"):
        arguments.end_ms(1_765_000_000.0)


def test_end_ms_in_ms_as_a_whole_float_is_taken() -> None:
    assert arguments.end_ms(1_765_000_000_000.0) == 1_765_000_000_000


@pytest.mark.parametrize(("sent", "usd"), [("1e5", 100_000.0), (".5", 0.5), ("2.5E6", 2_500_000.0)])
def test_usd_takes_any_number_written_as_a_string(sent: str, usd: float) -> None:
    # The tool's float took "1e5" before the reader was added; the reader refused it.
    assert arguments.usd(sent) == usd


def test_minutes_take_a_number_in_exponent_form_too() -> None:
    # since_minutes (a float) took "1e2" before the reader was added.
    assert arguments.minutes("1e2") == 100


@pytest.mark.parametrize(
    ("sent", "window"),
    [("1w", 10_080), ("2 weeks", 20_160), ("1 hr", 60), ("3 hrs", 180), ("90 mins", 90)],
)
def test_minutes_take_weeks_and_the_short_words_for_hours(sent: str, window: int) -> None:
    # '1w' and '1 week' were refused "not a number of minutes" while end_ms took '1w' ago.
    assert arguments.minutes(sent) == window


def test_end_ms_as_a_small_count_is_refused_with_a_time_ago_to_send() -> None:
    # A model wrote end_ms=60 meaning an hour; read as ms it is 1970, before any liquidation.
    with pytest.raises(ValueError, match=r"end_ms 60 is 1970-01-01T00:00:00Z.*'60m'"):
        arguments.end_ms(60)


@pytest.mark.parametrize("sent", [-5, "0", "1970-01-01", "1969-12-31T23:00"])
def test_end_ms_before_any_liquidation_is_refused_naming_end_ms_in_any_form(sent: object) -> None:
    # -5, "0" or a 1970 date passed the reader and reached the server as a window whose
    # start was negative: the agent read "start must be between 0 and ...", an argument it
    # never sent.
    with pytest.raises(ValueError, match=r"^end_ms -?\d+ is 19\d\d-.*before any liquidation"):
        arguments.end_ms(sent)
    with pytest.raises(ValueError, match=r"'90m'"):
        arguments.end_ms(sent)


@pytest.mark.parametrize("sent", ["", "  ", [" "]])
def test_an_empty_market_name_is_refused_by_the_tool_itself(sent: object) -> None:
    # heatmap_clusters answered "No heatmap for : ...", market_stats "market is empty: ...
    # leave the parameter out", of an argument the tool requires.
    with pytest.raises(ValidationError, match="at least 1 character"):
        TypeAdapter(MarketArg).validate_python(sent)
    assert TypeAdapter(MarketArg).validate_python([" btc-perp "]) == "btc-perp"


@pytest.mark.parametrize("sent", ["both", "Both", "all", "any"])
def test_both_sides_or_every_market_read_as_no_filter(sent: str) -> None:
    # A model sent recent_liquidations heatmap_clusters' side="both", and market_summary
    # market="all": refused as "Input should be 'long' or 'short'" and "market 'ALL' is not a
    # market name", where leaving the argument out means exactly that.
    assert arguments.side_or_every(sent) is None
    assert arguments.market_or_every(sent) is None
    assert arguments.side_or_every("Longs") == "long"
    assert arguments.market_or_every(["ETH-PERP"]) == "ETH-PERP"
