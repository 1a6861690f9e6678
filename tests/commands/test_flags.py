"""Flags a command cannot honour are refused before it starts, naming the flag."""

from __future__ import annotations

from pathlib import Path

import pytest

from purpleflea import cli


@pytest.mark.parametrize("command", ["serve", "sim"])
@pytest.mark.parametrize("markets", ["0", "301", "many"])
def test_a_market_count_the_simulator_cannot_make_is_refused_up_front(
    command: str, markets: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # `serve --markets 0` printed its banner, logged the simulator's traceback ("n_markets must
    # be between 1 and 300") and kept serving no data; `sim` named the internal n_markets.
    store = ["--store", str(tmp_path / "history.sqlite"), "--days", "1"]
    extra = ["--data-dir", str(tmp_path)] if command == "serve" else store
    with pytest.raises(SystemExit) as exit_:
        cli.main([command, "--markets", markets, *extra])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert f"argument --markets: must be a whole number from 1 to 300, got {markets!r}" in err
    assert not any(tmp_path.iterdir())  # nothing started, nothing written


def test_a_url_without_a_scheme_names_the_flag(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["history", "--url", "127.0.0.1:8731", "--api-key", "pf_x"]) == 2
    err = capsys.readouterr().err
    assert err == (
        "purpleflea history: --url must start with http:// or https://: '127.0.0.1:8731'\n"
    )
    assert cli.main(["mcp", "--url", "127.0.0.1:8731", "--api-key", "pf_x"]) == 2
    assert capsys.readouterr().err == (
        "purpleflea mcp: --url must start with http:// or https://: '127.0.0.1:8731'\n"
    )


@pytest.mark.parametrize("limit", ["0", "-3", "ten"])
def test_history_limit_is_any_positive_count(
    limit: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # `history --limit 5000` pages through 5,000 events, but `--limit 0` went to the server and
    # came back "limit must be between 1 and 1000, got 0", a bound the command does not have.
    with pytest.raises(SystemExit) as exit_:
        cli.main(["history", "--limit", limit, "--api-key", "pf_x"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert f"argument --limit: must be a whole number of events, 1 or more, got {limit!r}" in err


@pytest.mark.parametrize("count", ["-1", "ten"])
def test_tail_count_is_a_whole_number_of_events(
    count: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # `tail --count -1` was taken (its check was `if args.count and seen >= args.count`) and
    # ran for ever without a word, as --count 0 (never stop) does.
    with pytest.raises(SystemExit) as exit_:
        cli.main(["tail", "--count", count, "--api-key", "pf_x"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert f"argument --count: must be a whole number of events, 0 or more, got {count!r}" in err


def test_a_commands_own_flags_may_follow_its_action(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # `purpleflea keys create --data-dir X` (every other command takes --data-dir after its
    # name) failed with "purpleflea: error: unrecognized arguments: --data-dir X".
    data = tmp_path / "data"
    assert cli.main(["keys", "create", "--account", "me", "--data-dir", str(data)]) == 0
    assert (data / "keys.sqlite").exists()
    assert cli.main(["keys", "list", "--data-dir", str(data)]) == 0
    assert "me" in capsys.readouterr().out
    parser = cli.build_parser()
    after = parser.parse_args(
        ["webhooks", "list", "--data-dir", str(data), "--url", "http://h:1", "--json"]
    )
    assert (after.data_dir, after.url, after.json) == (data, "http://h:1", True)
    before = parser.parse_args(["webhooks", "--url", "http://h:1", "list"])
    assert (before.data_dir, before.url, before.json) == (Path("data"), "http://h:1", False)
    keys = parser.parse_args(["keys", "--data-dir", str(data), "revoke", "abc"])
    assert (keys.data_dir, keys.store, keys.key_id) == (data, None, "abc")


def test_a_data_folder_given_as_store_means_its_history_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # `backtest --store data` said "no history store at data (pass --store PATH)" to a user who
    # had passed one, and `sim --store data` "store data: unable to open database file".
    data = tmp_path / "data"
    data.mkdir()
    sim = ["sim", "--days", "0.01", "--markets", "20", "--no-progress", "--start", "2025-03-01"]
    assert cli.main([*sim, "--store", str(data)]) == 0
    assert (data / "purpleflea.sqlite").is_file()
    assert f"into {data / 'purpleflea.sqlite'}" in capsys.readouterr().out
    out = tmp_path / "report"
    assert cli.main(["backtest", "--store", str(data), "--out", str(out)]) == 0
    assert (out / "report.json").is_file()


def test_sim_and_backtest_take_the_data_folder_as_every_other_command_does(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # `serve`, `import`, `export`, `history`, `keys` take --data-dir; `purpleflea sim --days 1
    # --data-dir mine` was "purpleflea: error: unrecognized arguments: --data-dir mine". A new
    # folder is a folder (as `serve --data-dir` makes it), not a file named like it.
    data = tmp_path / "mine"
    sim = ["sim", "--days", "0.01", "--markets", "20", "--no-progress", "--start", "2025-03-01"]
    assert cli.main([*sim, "--data-dir", str(data)]) == 0
    assert (data / "purpleflea.sqlite").is_file()
    assert f"into {data / 'purpleflea.sqlite'}" in capsys.readouterr().out
    out = tmp_path / "report"
    assert cli.main(["backtest", "--data-dir", str(data), "--out", str(out)]) == 0
    assert (out / "report.json").is_file()
    for command in (sim, ["backtest"]):
        with pytest.raises(SystemExit) as exit_:
            cli.main([*command, "--data-dir", str(data), "--store", str(data)])
        assert exit_.value.code == 2
        assert "argument --store: not allowed with argument --data-dir" in capsys.readouterr().err


def test_sim_and_backtest_refuse_a_postgresql_url_without_showing_its_password(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # They read and write a SQLite file: `sim --store postgresql://u:secret@h/db` simulated a
    # day into the file ./postgresql:/u:secret@h/db, and `backtest` printed the password.
    monkeypatch.chdir(tmp_path)
    url = "postgresql://u:secret@127.0.0.1:5432/pf"
    for command in (["sim", "--days", "0.01", "--markets", "3", "--no-progress"], ["backtest"]):
        assert cli.main([*command, "--store", url]) == 2
        err = capsys.readouterr().err
        assert "'postgresql://u:***@127.0.0.1:5432/pf'" in err, err
        assert "SQLite history file" in err
        assert "secret" not in err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "argv",
    [
        ["history", "--side", "Short", "--side", "LONG"],
        ["tail", "--side", "Short", "--side", "LONG"],
        ["webhooks", "create", "https://example.com/hook", "--side", "Short", "--side", "LONG"],
    ],
)
def test_side_flags_are_taken_in_any_case(argv: list[str]) -> None:
    # The server, the SDK and the stream take sides in any case; the CLI's --side refused
    # 'Short' ("invalid choice") before it asked anyone.
    args = cli.build_parser().parse_args(argv)
    assert args.side == ["short", "long"]


def test_the_webhook_limits_across_accounts_are_serve_flags() -> None:
    from purpleflea.commands.serve import _config

    argv = ["serve", "--source", "none", "--webhooks-per-host", "0"]
    argv += ["--webhook-destination-rate", "12.5", "--webhook-destination-bytes", "1000"]
    settings = _config(cli.build_parser().parse_args(argv), "none").webhooks
    assert settings.max_per_host == 0
    assert (settings.destination_rate, settings.destination_burst) == (12.5, 25)  # 2 s worth
    assert settings.destination_bytes_per_s == 1000
    defaults = _config(cli.build_parser().parse_args(["serve"]), "none").webhooks
    assert (defaults.max_per_host, defaults.destination_rate, defaults.destination_burst) == (
        20,
        100.0,
        200,
    )


@pytest.mark.parametrize(
    ("flag", "value"),
    [
        ("--webhook-destination-rate", "inf"),
        ("--webhook-destination-rate", "nan"),
        ("--webhook-destination-rate", "-1"),
        ("--webhook-destination-bytes", "inf"),
        ("--webhooks-per-host", "-2"),
    ],
)
def test_a_webhook_limit_that_is_no_number_names_its_flag(
    flag: str, value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # inf was an OverflowError traceback; nan said "cannot convert float NaN to integer".
    with pytest.raises(SystemExit) as exited:
        cli.main(["serve", "--source", "none", f"{flag}={value}"])
    assert str(exited.value) == (
        f"purpleflea serve: {flag} must be a number 0 or more (0: no limit), got "
        f"{float(value) if flag != '--webhooks-per-host' else int(value)}"
    )


@pytest.mark.parametrize("width", ["0", "-3", "501", "wide"])
def test_a_heatmap_width_that_draws_no_bars_or_floods_the_terminal_is_refused(
    width: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # --width 0 and -3 drew a map with no bars at all and exit status 0; --width 100000
    # printed lines of 200,000 characters.
    with pytest.raises(SystemExit) as exit_:
        cli.main(["heatmap", "BTC-PERP", "--width", width, "--url", "http://127.0.0.1:9"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert f"argument --width: must be a whole number from 1 to 500, got {width!r}" in err


@pytest.mark.parametrize("command", ["history", "tail", "webhooks create"])
@pytest.mark.parametrize("side", ["buy", "SELL"])
def test_an_order_side_says_which_position_it_means(
    command: str, side: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # The REST API, the stream, the SDK and the MCP tools answer `sell` with "an order that
    # sells closes a long (send 'long')"; the commands said only "invalid choice: 'sell'".
    args = [*command.split(), *(["http://127.0.0.1:9/hook"] if "webhooks" in command else [])]
    with pytest.raises(SystemExit) as exit_:
        cli.main([*args, "--side", side, "--api-key", "pf_x"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert f"argument --side: must be long or short, got {side!r}: side is the liquidated" in err
    assert "an order that sells closes a long (send 'long')" in err


@pytest.mark.parametrize("command", ["history", "tail"])
def test_a_side_is_taken_in_any_case(command: str) -> None:
    parser = cli.build_parser()
    args = parser.parse_args([command, "--side", "Short", "--side", "LONG"])
    assert args.side == ["short", "long"]


_MIN_USD_COMMANDS = [
    ["history"],
    ["tail"],
    ["webhooks", "create", "https://example.com/hook"],
]


@pytest.mark.parametrize("command", _MIN_USD_COMMANDS)
@pytest.mark.parametrize(
    ("given", "usd"),
    [("100k", 100_000.0), ("$1.5M", 1_500_000.0), ("1e6", 1e6), ("250,000", 250_000.0)],
)
def test_min_usd_takes_an_amount_as_the_mcp_tools_do(
    command: list[str], given: str, usd: float
) -> None:
    # `--min-usd 100k` was "invalid float value: '100k'" while the MCP tools' min_usd took it.
    args = cli.build_parser().parse_args([*command, "--min-usd", given])
    assert args.min_usd == usd


@pytest.mark.parametrize("command", _MIN_USD_COMMANDS)
@pytest.mark.parametrize(
    ("given", "why"),
    [
        ("lots", "is not an amount of USD: give a number (100000) or one such as '$100k', '1.5M'"),
        ("nan", "is not an amount of USD"),
        ("1,5M", "commas only between thousands"),
        ("-5", "must be 0 or more USD"),
        # float() reads 400 nines as inf, and then the pattern took them: infinite USD.
        ("9" * 400, "is not an amount of USD"),
        ("1" + "0" * 300 + "T", "is not an amount of USD"),
    ],
)
def test_a_min_usd_that_is_no_amount_names_it_and_the_forms_taken(
    command: list[str], given: str, why: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # `nan` and `-5` went to the server (a 400 after connecting, or a webhook's filter refused
    # there); `lots` said "invalid float value" with no form that is taken.
    with pytest.raises(SystemExit) as exit_:
        cli.main([*command, "--min-usd", given, "--api-key", "pf_x"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "argument --min-usd: " in err
    assert repr(given) in err
    assert why in err


@pytest.mark.parametrize("days", ["7d", "nan", "inf", "-1", "0"])
def test_sim_days_is_a_number_of_days_above_zero(
    days: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # `--days 7d` was "invalid float value" naming no form taken; `--days inf` ended in an
    # OverflowError traceback; nan, -1 and 0 were refused only after the flags were read.
    with pytest.raises(SystemExit) as exit_:
        cli.main(["sim", "--days", days, "--store", str(tmp_path / "history.sqlite")])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert (
        f"argument --days: must be a number of days above 0, such as 7 or 0.5, got {days!r}" in err
    )
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize("argv", [[], ["-v"]])
def test_no_command_lists_the_commands(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    # `purpleflea` alone said "error: the following arguments are required: COMMAND" and
    # nothing of what the commands are.
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert "serve        run the tracker server" in err
    assert "tail         live feed of liquidations in the terminal" in err
    assert err.endswith(
        "purpleflea: name a command (listed above); `purpleflea COMMAND -h` shows its flags\n"
    )


@pytest.mark.parametrize("days", ["1e12", "30000", "9" * 300])
def test_sim_days_that_leave_the_dates_are_refused_before_simulating(
    days: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # `--days 1e12` (finite, above 0) ended in an OverflowError traceback from the simulation
    # process: the history's start, today less the days, is no timestamp in milliseconds.
    store = tmp_path / "history.sqlite"
    assert cli.main(["sim", "--days", days, "--store", str(store), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert f"--days {float(days):g} from today leaves 1970-01-01 .. 9999-12-31" in err
    assert "Traceback" not in err
    assert not store.exists()


def test_sim_days_past_the_last_date_from_start_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = tmp_path / "history.sqlite"
    argv = ["sim", "--days", "1000", "--start", "9999-01-01", "--store", str(store)]
    assert cli.main([*argv, "--no-progress"]) == 2
    assert "--days 1000 from --start leaves 1970-01-01 .. 9999-12-31" in capsys.readouterr().err
    assert not store.exists()


def test_sim_days_refused_from_the_first_date_name_the_start_given(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # --start 1970-01-01 is millisecond 0, which the refusal read as no --start ("from
    # today"), naming a start the user had not asked for.
    store = tmp_path / "history.sqlite"
    argv = ["sim", "--days", "3000000", "--start", "1970-01-01", "--store", str(store)]
    assert cli.main([*argv, "--no-progress"]) == 2
    assert "--days 3e+06 from --start leaves 1970-01-01" in capsys.readouterr().err
    assert not store.exists()


@pytest.mark.parametrize(
    ("start", "why"),
    [("2025-02-30", ": day is out of range for month"), ("March", "")],
)
def test_a_sim_start_that_is_no_day_says_what_is_wrong_with_it(
    start: str, why: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # "argument --start: --start must be YYYY-MM-DD, got '2025-02-30'": a date in that very
    # form, refused with no word of why (February has no 30th).
    with pytest.raises(SystemExit):
        cli.main(["sim", "--days", "1", "--start", start, "--store", str(tmp_path / "h.sqlite")])
    err = capsys.readouterr().err.splitlines()[-1]
    assert err == (
        f"purpleflea sim: error: argument --start: not a UTC day (YYYY-MM-DD): {start!r}{why}"
    )
