"""--start/--end of history and export: dates, times, times ago and ms; seconds refused."""

from __future__ import annotations

import argparse

import pytest

from purpleflea.cli import build_parser
from purpleflea.commands.when import parse_when

NOW = 1_760_126_400_000  # 2025-10-10T20:00:00Z


def test_the_forms_a_user_types_are_read_as_utc_milliseconds() -> None:
    assert parse_when("2025-10-10") == 1_760_054_400_000
    assert parse_when("2025-10-10T20:00") == NOW
    assert parse_when("2025-10-10T20:00:00Z") == NOW
    assert parse_when("2025-10-10T22:00+02:00") == NOW
    assert parse_when("90m", now=NOW) == NOW - 90 * 60_000
    assert parse_when("6h", now=NOW) == NOW - 6 * 3_600_000
    assert parse_when("1.5d", now=NOW) == NOW - 36 * 3_600_000
    assert parse_when(str(NOW)) == NOW
    assert parse_when("0") == 0  # the epoch itself is a time too


def test_a_time_ago_is_read_in_either_case() -> None:
    # The MCP end_ms took '6h' but refused '6H' (its window arguments take both).
    assert parse_when("6H", now=NOW) == parse_when("6h", now=NOW) == NOW - 6 * 3_600_000
    assert parse_when(" 90M ", now=NOW) == NOW - 90 * 60_000


def test_seconds_since_the_epoch_are_refused_with_what_to_type() -> None:
    # Read as ms, 1760126400 is 1970-01-21: a history from it returned everything, silently.
    with pytest.raises(ValueError, match="looks like seconds") as refused:
        parse_when("1760126400")
    assert "1760126400000" in str(refused.value)
    assert "2025-10-10" in str(refused.value)
    # The value once, not "'1760126400' 1760126400 looks like ..." (`history --start`, and the
    # SDK's start="1760126400").
    assert str(refused.value).startswith("1760126400 looks like seconds since the epoch")


def test_a_value_that_is_no_time_names_the_forms() -> None:
    with pytest.raises(ValueError, match="'yesterday' is not a time: give a UTC date"):
        parse_when("yesterday")


@pytest.mark.parametrize("command", ["history", "export"])
def test_the_commands_refuse_seconds_as_a_usage_error(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    parser = build_parser()
    extra = ["--format", "csv", "--out", "out.csv"] if command == "export" else []
    with pytest.raises(SystemExit) as exited:
        parser.parse_args([command, "--start", "1760126400", *extra])
    assert exited.value.code == 2
    assert "looks like seconds" in capsys.readouterr().err
    parsed: argparse.Namespace = parser.parse_args(
        [command, "--start", "6h", "--end", "2025-10-10", *extra]
    )
    assert parsed.end == 1_760_054_400_000
    assert parsed.start > parsed.end


def test_a_time_as_the_tools_print_it_and_a_time_ago_in_words_are_read() -> None:
    # The MCP tools print times as "2025-10-10 20:00:00 UTC" (answers.utc): a model that sent
    # one back as end_ms, to look before an event it was shown, was refused "is not a time";
    # so were "2h ago" and "90 minutes ago", as models write a time ago.
    from purpleflea.mcp.answers import utc

    assert parse_when(utc(NOW)) == NOW
    assert parse_when("2025-10-10 20:00 utc") == NOW
    assert parse_when("2025-10-10T20:00:00 GMT") == NOW
    assert parse_when("2h ago", now=NOW) == NOW - 2 * 3_600_000
    assert parse_when("90 minutes ago", now=NOW) == NOW - 90 * 60_000
    assert parse_when("1 hour", now=NOW) == NOW - 3_600_000
    assert parse_when("3 days ago", now=NOW) == NOW - 3 * 86_400_000
    for wrong in ("90ms", "2h later", "2025-10-10 20:00 CET", "ago"):
        with pytest.raises(ValueError, match="is not a time"):
            parse_when(wrong, now=NOW)


def test_now_is_a_time() -> None:
    # `history --end now` and the SDK's end="now" were refused ("'now' is not a time"), while
    # the MCP tools' end_ms took it.
    assert parse_when("now", now=NOW) == parse_when(" NOW ", now=NOW) == NOW
