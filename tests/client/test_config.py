"""Where the client's server address comes from, and what a wrong one is told."""

from __future__ import annotations

import re
from typing import Any

import pytest

from purpleflea.client import AuthenticationError, BadRequestError, LiquidationClient


def test_a_url_without_a_scheme_is_refused_naming_where_it_came_from(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The product page's example takes the server from $PURPLEFLEA_URL; its error named
    # base_url, an argument the program never passed.
    monkeypatch.setenv("PURPLEFLEA_URL", "127.0.0.1:8731")
    with pytest.raises(ValueError, match=r"^\$PURPLEFLEA_URL must start with http:// or https://"):
        LiquidationClient(api_key="pf_x")
    with pytest.raises(ValueError, match=r"^base_url must start with http:// or https://"):
        LiquidationClient(api_key="pf_x", base_url="localhost:8000")
    monkeypatch.setenv("PURPLEFLEA_URL", " , ")
    with pytest.raises(ValueError, match=r"^\$PURPLEFLEA_URL names no server"):
        LiquidationClient(api_key="pf_x")
    monkeypatch.setenv("PURPLEFLEA_URL", "http://a:1, https://b:2/")
    assert LiquidationClient(api_key="pf_x").servers == ("http://a:1", "https://b:2")


def test_a_key_pasted_with_its_newline_is_used_without_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # "$(cat key.txt)" keeps no newline but a paste or a file read does: the header was
    # illegal and the SDK reported an unreachable server, quoting the key.
    assert LiquidationClient(api_key="pf_abc\n").auth_headers() == {
        "Authorization": "Bearer pf_abc"
    }
    monkeypatch.setenv("PURPLEFLEA_API_KEY", " pf_env\n")
    assert LiquidationClient().auth_headers() == {"Authorization": "Bearer pf_env"}
    with pytest.raises(AuthenticationError, match="characters no key has") as bad:
        LiquidationClient(api_key="pf_a\nb").auth_headers()
    assert "pf_a" not in str(bad.value)


def test_times_are_taken_as_the_commands_take_them() -> None:
    # `purpleflea history --start 2026-12-05` works; the SDK's start="2026-12-05" (or a date)
    # went to the server as is and came back as "start must be an integer, got '2026-12-05'".
    from datetime import UTC, date, datetime

    from purpleflea.client import BadRequestError
    from purpleflea.client._config import as_ms
    from purpleflea.clock import parse_when

    midnight = 1_760_054_400_000  # 2025-10-10T00:00Z
    assert as_ms("2025-10-10", "start") == midnight
    assert as_ms(date(2025, 10, 10), "start") == midnight
    assert as_ms("2025-10-10T20:30", "end") == midnight + 20.5 * 3_600_000
    assert as_ms(datetime(2025, 10, 10, tzinfo=UTC), "start") == midnight
    assert as_ms(str(midnight), "start") == midnight
    assert abs(as_ms("6h", "start") - parse_when("6h")) < 5_000  # type: ignore[operator]
    assert as_ms(None, "start") is None
    with pytest.raises(BadRequestError, match=r"^start: 'yesterday' is not a time: give a UTC"):
        as_ms("yesterday", "start")
    with pytest.raises(BadRequestError, match=r"^end: 1760054400 looks like seconds since"):
        as_ms("1760054400", "end")


def test_the_placeholder_key_without_the_variable_says_it_is_the_placeholder(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # SPEC.md's program run verbatim without PURPLEFLEA_API_KEY said "no API key: pass
    # api_key=... or set PURPLEFLEA_API_KEY" to a program that passes api_key="YOUR_KEY".
    monkeypatch.delenv("PURPLEFLEA_API_KEY", raising=False)
    with pytest.raises(AuthenticationError) as missing:
        LiquidationClient(api_key="YOUR_KEY").auth_headers()
    assert missing.value.code == "missing_api_key"
    assert str(missing.value).startswith(
        'api_key="YOUR_KEY" is the example\'s placeholder: it means the key in '
        "PURPLEFLEA_API_KEY, which is not set: "
    )
    with pytest.raises(AuthenticationError, match=r"^no API key: pass api_key=\.\.\."):
        LiquidationClient().auth_headers()


@pytest.mark.parametrize(
    ("call", "named"),
    [
        (lambda liq: liq.history(markets=5), "markets= takes a name or a list of names, got 5"),
        (lambda liq: liq.history(market=5.0), "market= takes a name or a list of names, got 5.0"),
        (lambda liq: liq.stream(coverages=1), "coverages= takes a name or a list of names"),
        (lambda liq: liq.stream(channels=5), "channels= takes a name or a list of names"),
    ],
)
async def test_a_filter_that_is_no_name_nor_list_says_which(call: Any, named: str) -> None:
    # It was "TypeError: 'int' object is not iterable", naming no argument.
    liq = LiquidationClient(api_key="pf_x", base_url="http://127.0.0.1:9")
    with pytest.raises(TypeError, match=re.escape(named)):
        await call(liq)


@pytest.mark.parametrize(
    ("make", "named"),
    [
        (lambda: LiquidationClient(api_key="pf_x", timeout=0), "timeout must be a positive"),
        (lambda: LiquidationClient(api_key="pf_x", timeout=-1), "timeout must be a positive"),
        (
            lambda: LiquidationClient(api_key="pf_x").stream(idle_timeout=0),
            "idle_timeout must be a positive number of seconds, got 0",
        ),
        (
            lambda: LiquidationClient(api_key="pf_x").stream(max_backoff=float("nan")),
            "max_backoff must be a positive",
        ),
        (
            lambda: LiquidationClient(api_key="pf_x").stream(give_up_after=-1),
            "give_up_after must be a positive",
        ),
    ],
)
def test_a_setting_in_seconds_that_cannot_work_is_refused_naming_it(make: Any, named: str) -> None:
    # timeout=0 said "no Purple Flea server answers at http://127.0.0.1:34897 ()" of a running
    # server; idle_timeout=0 logged "lost the connection (nothing for 0 s); reconnecting" and
    # reopened the stream as fast as it could, for ever.
    with pytest.raises(BadRequestError, match=re.escape(named)):
        make()
    with pytest.raises(TypeError, match="timeout must be a number of seconds, got '5'"):
        LiquidationClient(api_key="pf_x", timeout="5")  # type: ignore[arg-type]
