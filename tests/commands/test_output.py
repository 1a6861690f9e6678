"""What the client commands print: plain-decimal prices, and no HTTP request log by default."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import msgspec
import pytest

from purpleflea.client.errors import BadRequestError, PurpleFleaError, raise_for_response
from purpleflea.commands import webhooks
from purpleflea.commands.heatmap import render
from purpleflea.commands.history import json_line
from purpleflea.commands.tail import _waiting, format_alert, format_event
from purpleflea.formatting import format_price, format_usd, format_usd_exact
from purpleflea.model import Heatmap, Liquidation
from tests.conftest import REPO
from tests.events import stored_alert, stored_event
from tests.server.conftest import (
    Running,
    hold_warm_up_halfway,
    make_config,
    quicken_warm_up,
    running_server,
    venue_event,
)


@pytest.mark.parametrize(
    ("price", "text"),
    [
        (43_210.5, "43,210.50"),
        (2.4208e-05, "0.000024208"),
        (0.5, "0.50"),
        (3.14159265, "3.14159"),
        (1_234_567.891, "1,234,567.89"),
        (0.0, "0.00"),
        (-0.00012345678, "-0.000123457"),
    ],
)
def test_prices_are_plain_decimals_with_significant_digits(price: float, text: str) -> None:
    assert format_price(price) == text


@pytest.mark.parametrize(
    ("amount", "text"),
    [
        (3_210_000, "$3.21M"),
        (850_000, "$850K"),
        (45_300, "$45.3K"),
        (54_500, "$54.5K"),
        (780e6, "$780M"),
        (1.254e9, "$1.25B"),
        (999_999, "$1M"),
        (999.6, "$1K"),
        (950, "$950"),
        (420.4, "$420"),
        (0, "$0"),
        (-1_200, "-$1.2K"),
        (2.5e15, "$2,500T"),
    ],
)
def test_usd_amounts_have_three_significant_digits_and_a_short_unit(
    amount: float, text: str
) -> None:
    """One convention for every sentence and label: alert messages, heatmap cluster labels,
    the heatmap command and the MCP tools (the dashboard's ``usdShort`` matches it)."""
    assert format_usd(amount) == text


def test_an_events_notional_prints_in_whole_dollars() -> None:
    assert format_usd_exact(2_140_000.4) == "$2,140,000"
    assert format_usd_exact(-950.6) == "-$951"


def test_a_liquidation_under_a_dollar_is_not_printed_as_nothing() -> None:
    # riftfern's ONTUSDT SELL of 0.1 ONT at 0.0611 (2025-12-28 20:27:05 UTC), $0.00611: the
    # history line read "$0"; 36 of the four real recordings' events are under 50 cents.
    assert format_usd_exact(0.1 * 0.0611) == "$0.0061"
    assert format_usd(0.1 * 0.0611) == "$0.0061"
    assert [format_usd_exact(x) for x in (0.018, 0.45, 0.5, 0.6, 0.0999, 1.2e-5, 0.0)] == [
        "$0.018",
        "$0.45",
        "$0.5",
        "$1",
        "$0.1",
        "$0.000012",
        "$0",
    ]
    event = stored_event(1, market="ONT-PERP", price=0.0611, size_usd=0.1 * 0.0611)
    assert "$0.0061  @" in format_event(event, color=False)


def test_tail_prints_a_meme_coins_price_without_scientific_notation() -> None:
    event = Liquidation(
        id="x",
        seq=1,
        exchange="binance_usdm",
        symbol="1000PEPEUSDT",
        market="PEPE-PERP",
        side="long",
        price=2.4208e-05,
        quantity=1e9,
        size_usd=24_208.0,
        ts=1_760_000_000_000,
        received_at=1_760_000_000_000,
        coverage="snapshot",
        cascade_score=2,
    )
    line = format_event(event, color=False)
    assert "@  0.000024208" in line
    assert "e-05" not in line


def test_history_lines_name_their_zone() -> None:
    # `history` wrote "2025-10-09 08:53:20", which a reader east or west of Greenwich takes
    # for their own clock (the dashboard names its zone, the MCP tools write "UTC").
    event = stored_event(1, ts=1_760_000_000_000)
    assert format_event(event, color=False, date=True).startswith("2025-10-09 08:53:20 UTC  ")
    assert format_event(event, color=False).startswith("08:53:20  ")  # tail's status says UTC


#: What a hostile (or impersonated: plain http) server may put in a field the CLI prints: an
#: OSC sequence that retitles the terminal (some write the clipboard), a screen clear, a
#: carriage return that overwrites the line, a right-to-left override.
_HOSTILE = "X\x1b]0;owned\x07\x1b[2J\r\u202eY"


def test_tail_and_history_escape_what_the_server_chose() -> None:
    event = stored_event(
        1, exchange="binance_usdm" + _HOSTILE, market="BTC-PERP" + _HOSTILE, coverage="complete"
    )
    for color in (False, True):
        line = format_event(event, color=color, date=True)
        assert "BTC-PERPX\\x1b]0;owned\\x07\\x1b[2J\\r\\u202eY" in line
        assert not any(c in line for c in "\x07\r\u202e")
        assert ("\x1b" in line) == color  # our own colors only
    alert = stored_alert(
        1, id="c" + _HOSTILE, market="BTC-PERP" + _HOSTILE, message="cascade" + _HOSTILE
    )
    assert "\x1b" not in format_alert(alert, color=False)
    assert "cascadeX\\x1b]0;owned" in format_alert(alert, color=False)


def test_history_json_escapes_what_the_server_chose() -> None:
    # `history --json` wrote the encoder's text: ESC and CR escaped (JSON's C0 rule), the
    # right-to-left override, a C1 CSI and Unicode tag characters as they were.
    hidden = "\u202e\x9b2J" + "".join(chr(0xE0000 + ord(c)) for c in "ignore")
    event = stored_event(1, market="BTC-PERP" + _HOSTILE + hidden, coverage="complete")
    line = json_line(event)
    assert line.isprintable()
    assert "\\u202e" in line
    assert msgspec.json.decode(line, type=Liquidation) == event
    plain = stored_event(2, coverage="complete")
    assert json_line(plain) == msgspec.json.encode(plain).decode()


def test_an_error_message_from_the_server_is_escaped() -> None:
    """The SDK's errors carry the server's message into every command's stderr."""
    request = httpx.Request("GET", "http://127.0.0.1:1/v1/liquidations")
    body = {"error": {"code": "bad_request" + _HOSTILE, "message": "no" + _HOSTILE}}
    response = httpx.Response(400, json=body, request=request)
    with pytest.raises(BadRequestError) as refused:
        raise_for_response(response)
    assert str(refused.value) == "noX\\x1b]0;owned\\x07\\x1b[2J\\r\\u202eY"
    assert "\x1b" not in refused.value.code
    # A stream's error frame becomes the same exception.
    frame = PurpleFleaError("cut" + _HOSTILE, "slow_consumer" + _HOSTILE)
    assert "\x1b" not in str(frame)
    assert "\x1b" not in frame.code


def test_heatmap_and_webhooks_output_escape_what_others_chose(
    capsys: pytest.CaptureFixture[str],
) -> None:
    heatmap = Heatmap(
        market="BTC-PERP" + _HOSTILE,
        ts=1,
        mark_price=100.0,
        bucket_size=1.0,
        prices=(99.0, 100.0),
        long_usd=(5.0, 0.0),
        short_usd=(0.0, 5.0),
        clusters=(),
    )
    assert "\x1b" not in render(heatmap, color=False)
    # A dead letter's error quotes the receiver's answer: whoever runs the target chose it.
    letters = {
        "total": 1,
        "dropped": 0,
        "dead_letters": [
            {
                "event_id": 7,
                "failed_at": 1_760_000_000_000,
                "frame": {"type": "liquidation"},
                "attempts": 3,
                "error": "HTTP 500: " + _HOSTILE,
            }
        ],
    }
    webhooks._print(argparse.Namespace(json=False, action="dead-letters"), letters)
    hooks = [
        {"id": "wh" + _HOSTILE, "dead_letters": 0, "filters": {}, "url": "http://x/" + _HOSTILE}
    ]
    webhooks._print(argparse.Namespace(json=False, action="list"), hooks)
    out = capsys.readouterr().out
    assert "HTTP 500: X\\x1b]0;owned" in out
    assert not any(c in out for c in "\x1b\x07\r\u202e")


def test_tails_connected_line_escapes_the_exchanges_the_server_named() -> None:
    """The line tail prints once subscribed names the exchanges as the server's subscribed
    frame has them: the server chose that text as much as an event's."""
    args = argparse.Namespace(
        market=None, exchange=["BYBIT"], side=None, min_usd=0.0, no_cascades=True
    )
    line = _waiting(args, "http://127.0.0.1:1", {"exchanges": ["bybit" + _HOSTILE]})
    assert "on bybitX\\x1b]0;owned\\x07\\x1b[2J\\r\\u202eY" in line
    assert not any(c in line for c in "\x1b\x07\r\u202e")
    # Not a list of names: never a traceback (items as text; not a list, what was typed).
    assert "on 7" in _waiting(args, "http://127.0.0.1:1", {"exchanges": [7]})
    assert "on BYBIT" in _waiting(args, "http://127.0.0.1:1", {"exchanges": "bybit"})


async def _started(*args: str, env: dict[str, str]) -> asyncio.subprocess.Process:
    """``purpleflea ARGS`` started with its output piped."""
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "purpleflea.cli",
        *args,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def _history(running: Running, *flags: str) -> tuple[str, str]:
    env = dict(os.environ)
    env.pop("PURPLEFLEA_URL", None)
    process = await _started(
        *flags, "history", "--url", running.url, "--api-key", running.key, "--limit", "3", env=env
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, err
    return out.decode(), err.decode()


async def test_history_logs_no_http_requests_unless_verbose(live: Running) -> None:
    await live.push(
        *(venue_event(market="PEPE-PERP", price=2.4208e-05, size_usd=5_000.0) for _ in range(3))
    )
    out, err = await _history(live)
    rows = out.splitlines()
    assert len(rows) == 3
    # Stored history spans days (imports span years): each row says its date and zone (UTC),
    # not only the time of day as the live tail does.
    assert all(re.match(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} UTC  LONG LIQ", row) for row in rows)
    assert all("0.000024208" in row for row in rows)
    assert "HTTP Request" not in err
    assert err == ""
    _, verbose = await _history(live, "-v")
    assert "HTTP Request: GET" in verbose


async def _command(*args: str, env: dict[str, str]) -> tuple[int, str, str]:
    process = await _started(*args, env=env)
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_history_says_when_nothing_matches(live: Running) -> None:
    # It printed nothing at all: no filter matched, or no server data, or a hang?
    await live.push(
        venue_event(market="BTC-PERP", size_usd=5_000.0),
        venue_event(market="ETH-PERP", size_usd=500.0),
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("PURPLEFLEA_")}
    query = ["history", "--url", live.url, "--api-key", live.key, "--market", "ETH-PERP"]
    status, out, err = await _command(*query, "--min-usd", "1000", env=env)
    assert (status, out) == (0, "")
    assert err == (
        "purpleflea history: no stored liquidations match (market ETH-PERP, min_usd 1,000)\n"
    )


async def test_history_says_when_a_market_is_stored_nowhere(live: Running) -> None:
    # `history --market ETHH-PERP` said only "no stored liquidations match (market
    # ETHH-PERP)", as of a quiet market: the MCP tools already say "a typo?" for it.
    env = {k: v for k, v in os.environ.items() if not k.startswith("PURPLEFLEA_")}
    query = ["history", "--url", live.url, "--api-key", live.key]
    # An empty store (a server just started): every market is unseen there, no typo said.
    _, _, empty = await _command(*query, "--market", "ETH-PERP", env=env)
    assert empty == "purpleflea history: no stored liquidations match (market ETH-PERP)\n"
    await live.push(venue_event(market="ETH-PERP", size_usd=5_000.0))
    status, out, err = await _command(
        *query, "--market", "ETHH-PERP", "--market", "eth-perp", "--side", "short", env=env
    )
    assert (status, out) == (0, "")
    assert err == (
        "purpleflea history: no stored liquidations match (market ETHH-PERP, market eth-perp, "
        "side short); no liquidation of ETHH-PERP is stored at all, in any window (a typo? "
        "`purpleflea history` without --market shows the latest markets)\n"
    )


async def test_history_says_when_it_was_asked_about_the_future(live: Running) -> None:
    # `history --start 2030-01-01` said "no stored liquidations match (start 1893456000000)":
    # a number the user never typed, and not why nothing matched.
    await live.push(venue_event(market="BTC-PERP", size_usd=5_000.0))
    env = {k: v for k, v in os.environ.items() if not k.startswith("PURPLEFLEA_")}
    query = ["history", "--url", live.url, "--api-key", live.key, "--start", "2030-01-01"]
    status, out, err = await _command(*query, "--end", "2030-01-02T12:00", env=env)
    assert (status, out) == (0, "")
    assert err == (
        "purpleflea history: no stored liquidations match (start 2030-01-01T00:00:00Z, "
        "end 2030-01-02T12:00:00Z): the start is in the future\n"
    )


async def test_a_client_command_without_a_key_names_the_flag(live: Running) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PURPLEFLEA_")}
    status, out, err = await _command("history", "--url", live.url, env=env)
    assert status == 2
    assert out == ""
    assert err.startswith("purpleflea history: no API key: pass --api-key KEY or set ")
    assert "purpleflea keys create --account you" in err
    assert "api_key=" not in err  # the SDK's spelling, not a flag


async def test_tail_says_it_is_connected_before_the_first_event(live: Running) -> None:
    # A quiet market (or a high --min-usd) left the terminal blank: connected and waiting,
    # still connecting, or stuck? The first line on stderr says which, once subscribed.
    env = {k: v for k, v in os.environ.items() if not k.startswith("PURPLEFLEA_")}
    process = await _started(
        *("tail", "--url", live.url, "--api-key", live.key, "--count", "1", "--color", "never"),
        *("--min-usd", "250000", "--market", "btc-perp", "--exchange", "BYBIT"),
        env=env,
    )
    assert process.stderr is not None
    first = await asyncio.wait_for(process.stderr.readline(), 30)
    assert first.decode() == (
        f"purpleflea tail: connected to {live.url}; waiting for liquidations of BTC-PERP on "
        "bybit of $250,000 or more, and cascade alerts (times UTC; Ctrl-C stops)\n"
    )  # the exchange as the server names it, not as typed
    await live.push(venue_event(market="BTC-PERP", exchange="bybit", size_usd=300_000.0))
    out, _ = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 0
    assert "BTC-PERP" in out.decode()


async def test_tail_says_when_a_market_is_stored_nowhere(live: Running) -> None:
    # `tail --market ETHH-PERP` waited for ever under "waiting for liquidations of ETHH-PERP",
    # as on a quiet market; history and the MCP tools say "a typo?" of such a name.
    env = {k: v for k, v in os.environ.items() if not k.startswith("PURPLEFLEA_")}
    query = ["tail", "--url", live.url, "--api-key", live.key, "--count", "1"]

    async def second_line(*markets: str) -> str:
        process = await _started(
            *query, *(arg for market in markets for arg in ("--market", market)), env=env
        )
        assert process.stderr is not None
        first = await asyncio.wait_for(process.stderr.readline(), 30)
        assert first.decode().startswith("purpleflea tail: connected to ")
        await live.push(venue_event(market="ETH-PERP", size_usd=5_000.0))
        out, err = await asyncio.wait_for(process.communicate(), 30)
        assert process.returncode == 0
        assert "ETH-PERP" in out.decode()
        return err.decode()

    # An empty store (a server just started): every market is unseen there, no typo said.
    assert "stored at all" not in await second_line("ETH-PERP")
    assert await second_line("ETHH-PERP", "ETH-PERP") == (
        "purpleflea tail: no liquidation of ETHH-PERP is stored at all, in any window (a typo? "
        "`purpleflea tail` without --market shows every market)\n"
    )


async def test_tail_says_why_no_liquidation_has_come_from_a_warming_simulator(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The README's `scripts/run` then `purpleflea tail`: the tail sat on "waiting for
    # liquidations" while the simulator warmed up, as it would on a broken server. It says
    # what the server says (health's source_status), once, under its first line.
    quicken_warm_up(monkeypatch)
    release = hold_warm_up_halfway(monkeypatch)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PURPLEFLEA_")}
    async with running_server(make_config(tmp_path, source="sim", sim_markets=10)) as running:
        try:
            process = await _started(
                *("tail", "--url", running.url, "--api-key", running.key, "--count", "1"),
                env=env,
            )
            assert process.stderr is not None
            first = await asyncio.wait_for(process.stderr.readline(), 30)
            assert first.decode().startswith("purpleflea tail: connected to ")
            second = await asyncio.wait_for(process.stderr.readline(), 30)
            assert second.decode() == (
                "purpleflea tail: no liquidation yet: the simulator is warming up its 10 "
                "markets (two unseen hours that settle their positions), 50 % done\n"
            )
        finally:
            release.set()
        out, _ = await asyncio.wait_for(process.communicate(), 120)
        assert process.returncode == 0
        assert "LIQ" in out.decode()


async def _closed_stdout(*args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    """Run the command with its stdout's reader gone (`| head` having read enough)."""
    read, write = os.pipe()
    os.close(read)  # before the child writes: every write to stdout is EPIPE
    try:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "purpleflea.cli",
            *args,
            env=env,
            stdout=write,
            stderr=asyncio.subprocess.PIPE,
        )
    finally:
        os.close(write)
    _, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return process.returncode, err.decode()


async def test_output_into_a_closed_pipe_stops_quietly(live: Running, tmp_path: Path) -> None:
    # `purpleflea keys create --account me | head -1` printed a BrokenPipeError traceback;
    # `purpleflea history --limit 5000 | head` said "lost the server: [Errno 32] Broken pipe".
    # Stop as `cat file | head` does: nothing on stderr, exit status 128 + SIGPIPE.
    await live.push(*(venue_event() for _ in range(3)))
    env = {**os.environ, "PURPLEFLEA_API_KEY": live.key}
    status, err = await _closed_stdout("history", "--url", live.url, env=env)
    assert (status, err) == (141, "")
    data = str(tmp_path)
    status, err = await _closed_stdout("keys", "--data-dir", data, "create", "--account", "me")
    assert status == 141
    assert "Traceback" not in err
    assert "Exception ignored" not in err


@pytest.mark.skipif(
    shutil.which("node") is None,
    reason="node is not installed: the dashboard's format.js is not run",
)
def test_the_dashboards_dollars_match_the_clis() -> None:
    """The dashboard's ``usd`` and ``usdShort`` (format.js) write what ``format_usd_exact`` and
    ``format_usd`` write: its feed showed a real $0.006 liquidation as "$0"."""
    amounts = [
        0.1 * 0.0611,
        0.018,
        0.45,
        0.5,
        0.6,
        0.0999,
        1.2e-5,
        0.0,
        950.6,
        2_140_000.4,
        45_300.0,
    ]
    module = REPO / "src" / "purpleflea" / "server" / "web" / "js" / "format.js"
    script = (
        f"import {{usd, usdShort}} from {json.dumps(module.as_uri())};"
        f"const amounts = {json.dumps(amounts)};"
        "console.log(JSON.stringify([amounts.map(usd), amounts.map(usdShort)]));"
    )
    done = subprocess.run(
        ["node", "--input-type=module", "-e", script], capture_output=True, text=True, check=True
    )
    exact, short = json.loads(done.stdout)
    assert exact == [format_usd_exact(amount) for amount in amounts]
    assert short == [format_usd(amount) for amount in amounts]


def _levels(text: str) -> list[str]:
    """The price column of each row of a rendered heatmap, top row first."""
    return [line.split("|")[1].strip() for line in text.splitlines() if line.count("|") == 2]


def test_heatmap_levels_of_a_coin_under_a_hundred_millionth_are_its_prices() -> None:
    # A coin at $0.0000000019 (the dashboard's meme-coin test price) in buckets of 1e-11: every
    # level and the mark read 0.00000000 (eight decimals, whatever the bucket).
    bucket = 1e-11
    heatmap = Heatmap(
        market="BABYDOGE-PERP",
        ts=1,
        mark_price=1.9e-9,
        bucket_size=bucket,
        prices=tuple(1.88e-9 + i * bucket for i in range(4)),
        long_usd=(5.0, 5.0, 0.0, 0.0),
        short_usd=(0.0, 0.0, 5.0, 5.0),
        clusters=(),
    )
    text = render(heatmap)
    assert _levels(text) == ["0.00000000191", "0.00000000190", "0.00000000189", "0.00000000188"]
    assert "mark 0.0000000019 " in text
    assert "bucket 0.00000000001;" in text


def test_heatmap_levels_show_the_buckets_digits_and_the_mark_once() -> None:
    # Buckets of 0.025 read 5.08, 5.03, 4.98 (rounded to two decimals: half a cent off each),
    # and the mark at 5.00 was marked on two rows: the float edge 4.975000000000001 + 0.025
    # is just above 5.0 too.
    bucket = 0.025
    heatmap = Heatmap(
        market="X-PERP",
        ts=1,
        mark_price=5.0,
        bucket_size=bucket,
        prices=tuple(4.9 + i * bucket for i in range(8)),
        long_usd=(5.0,) * 8,
        short_usd=(1.0,) * 8,
        clusters=(),
    )
    text = render(heatmap)
    assert _levels(text) == ["5.075", "5.050", "5.025", "5.000", "4.975", "4.950", "4.925", "4.900"]
    marked = [line for line in text.splitlines() if line.endswith("<- mark")]
    assert len(marked) == 1
    assert "|         5.000|" in marked[0]


def test_the_dashboards_prices_match_the_clis() -> None:
    """The dashboard's ``price`` (feed rows, cascade banner) writes what ``format_price``
    writes: it cut every price at or over 1,000 to one decimal (BTC's 61,234.56 read
    61,234.6), 1-1,000 to two (3.14159 read 3.14) and tiny ones to ten places (a
    0.00000000123456 fill read 0.0000000012)."""
    prices = [61_234.56, 43_210.5, 3.14159265, 142.5, 0.5, 2.4208e-05, 1.23456e-09, 1.9e-09, 0.0]
    module = REPO / "src" / "purpleflea" / "server" / "web" / "js" / "format.js"
    script = (
        f"import {{price}} from {json.dumps(module.as_uri())};"
        f"console.log(JSON.stringify({json.dumps(prices)}.map(price)));"
    )
    done = subprocess.run(
        ["node", "--input-type=module", "-e", script], capture_output=True, text=True, check=True
    )
    assert json.loads(done.stdout) == [f"${format_price(p)}" for p in prices]


def test_the_dashboards_uptime_share_never_reads_100_percent_for_less() -> None:
    """The coverage panel's percentages (uptime, throttle pressure): 0.999 (3.6 s down in the
    hour) and 0.9996 read "100%", a full hour's figure; now only a whole share does, and the
    rest is cut (not rounded up) to one decimal."""
    module = REPO / "src" / "purpleflea" / "server" / "web" / "js" / "format.js"
    shares = [1.0, 0.9999, 0.9996, 0.999, 0.9949, 0.5, 0.0004, 0.0]
    script = (
        f"import {{percent}} from {json.dumps(module.as_uri())};"
        f"console.log(JSON.stringify({json.dumps(shares)}.map(percent)));"
    )
    done = subprocess.run(
        ["node", "--input-type=module", "-e", script], capture_output=True, text=True, check=True
    )
    assert json.loads(done.stdout) == [
        "100%",
        "99.9%",
        "99.9%",
        "99.9%",
        "99.4%",
        "50.0%",
        "0.0%",
        "0%",
    ]
