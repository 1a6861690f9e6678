"""What a builder meets when something is wrong: every public SDK method raises the SDK's own
documented errors (never a raw httpx exception), each naming the URL and what to do; a burst
of calls waits out a short rate-limit refusal instead of failing."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from purpleflea.client import (
    BadRequestError,
    LiquidationClient,
    PurpleFleaError,
    RateLimitError,
    ServerUnreachableError,
    SyncLiquidationClient,
    aio,
)
from tests.ports import refused_url
from tests.server.conftest import make_config, running_server, venue_event

#: Every REST method of the SDK, called with valid arguments.
CALLS: dict[str, Callable[[SyncLiquidationClient], Any]] = {
    "history": lambda liq: liq.history(),
    "history_all": lambda liq: next(iter(liq.history_all())),
    "aggregate": lambda liq: liq.aggregate(),
    "coverage": lambda liq: liq.coverage(),
    "markets": lambda liq: liq.markets(),
    "cascades": lambda liq: liq.cascades(),
    "heatmap": lambda liq: liq.heatmap("BTC-PERP"),
    "create_webhook": lambda liq: liq.create_webhook("http://127.0.0.1:9/hook"),
    "webhooks": lambda liq: liq.webhooks(),
    "delete_webhook": lambda liq: liq.delete_webhook("wh_x"),
    "dead_letters": lambda liq: liq.dead_letters("wh_x"),
    "replay_dead_letters": lambda liq: liq.replay_dead_letters("wh_x"),
}


@pytest.mark.parametrize("method", sorted(CALLS))
def test_every_rest_method_on_a_dead_server_raises_the_sdks_error_naming_it(method: str) -> None:
    # The webhook methods raised httpx.ConnectError("All connection attempts failed"), the
    # others an httpx error too: a builder catching PurpleFleaError caught none of them.
    with (
        refused_url() as url,
        SyncLiquidationClient(api_key="pf_x", base_url=url) as liq,
        pytest.raises(ServerUnreachableError) as failed,
    ):
        CALLS[method](liq)
    assert isinstance(failed.value, PurpleFleaError)
    assert failed.value.code == "unreachable"
    message = str(failed.value)
    assert message.startswith(f"no Purple Flea server answers at {url} (")
    assert message.endswith("start one with `purpleflea serve`, or set PURPLEFLEA_URL")


@asynccontextmanager
async def _raw_server(answer: bytes | None) -> AsyncIterator[str]:
    """A loopback TCP server that answers every request with ``answer`` (None: never)."""

    async def session(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        if answer is None:
            await asyncio.sleep(30)
        else:
            writer.write(answer)
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(session, "127.0.0.1", 0)
    async with server:
        yield f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"


async def test_a_server_that_never_answers_is_a_timeout_naming_it() -> None:
    async with _raw_server(None) as url:
        client = LiquidationClient(api_key="pf_x", base_url=url, timeout=0.3)
        with pytest.raises(ServerUnreachableError) as failed:
            await client.markets()
        await client.aclose()
    assert failed.value.code == "timeout"
    assert str(failed.value).startswith(
        f"the Purple Flea server at {url} did not answer within 0.3 s (ReadTimeout)"
    )


async def test_a_create_that_timed_out_is_not_advised_to_be_retried_blindly() -> None:
    # The server may have made the webhook before the answer was lost: "retry" made two.
    async with _raw_server(None) as url:
        client = LiquidationClient(api_key="pf_x", base_url=url, timeout=0.3)
        with pytest.raises(ServerUnreachableError) as failed:
            await client.create_webhook("https://example.com/hook")
        await client.aclose()
    assert failed.value.code == "timeout"
    assert str(failed.value).endswith("list what is there (webhooks()) before you retry")
    assert "retry, or pass" not in str(failed.value)


async def test_another_service_at_the_url_is_named_as_such() -> None:
    # A dev server on port 8000 answered "HTTP 404: <html>..." with no word of where or why.
    page = b"<html>Not here</html>"
    answer = b"HTTP/1.1 404 Not Found\r\nContent-Length: %d\r\n\r\n%s" % (len(page), page)
    async with _raw_server(answer) as url:
        client = LiquidationClient(api_key="pf_x", base_url=url)
        with pytest.raises(PurpleFleaError) as failed:
            await client.markets()
        await client.aclose()
    message = str(failed.value)
    assert message.startswith(f"HTTP 404 from GET {url}/v1/markets, not a Purple Flea answer (")
    assert "is the URL a Purple Flea server's root" in message


async def test_a_url_with_a_path_too_many_says_to_give_the_servers_root(tmp_path: Path) -> None:
    async with running_server(make_config(tmp_path)) as live:
        client = LiquidationClient(api_key=live.key, base_url=f"{live.url}/v1")
        with pytest.raises(PurpleFleaError) as failed:
            await client.history()
        await client.aclose()
        assert str(failed.value) == (
            f"GET /v1/v1/liquidations: no such route on the server at {live.url}; "
            "is the URL given (PURPLEFLEA_URL or base_url) the server's root, without a path?"
        )
        # The stream retried such a URL for ever (the handshake's HTTP 403, as if the server
        # were down): nothing at that URL can start answering.
        started = time.monotonic()
        with pytest.raises(PurpleFleaError) as refused:
            async with client.stream():
                pytest.fail("subscribed to nothing")
        assert time.monotonic() - started < 2.0
        assert refused.value.code == "handshake_refused"
        assert f"{live.ws_url.removesuffix('/v1/stream')}/v1/v1/stream refused" in str(
            refused.value
        )


async def test_a_burst_of_calls_waits_out_a_short_rate_limit(tmp_path: Path) -> None:
    # The MCP market_summary tool asks seven routes at once: with the default limits (10/s,
    # burst 40) an agent's second or third tool call failed with "retry after 0.06 s".
    config = make_config(tmp_path, rate_per_s=5.0, rate_burst=1.0)
    async with running_server(config) as live:
        await live.push(venue_event())
        client = LiquidationClient(api_key=live.key, base_url=live.url)
        pages = await asyncio.gather(*(client.history() for _ in range(6)))
        await client.aclose()
    assert [len(page.events) for page in pages] == [1] * 6


@pytest.mark.parametrize("retry_after", ["0", "Wed, 21 Oct 2015 07:28:00 GMT", "soon"])
async def test_a_rate_limit_without_a_usable_wait_is_waited_a_second(
    retry_after: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A proxy's "Retry-After: 0" made the GET ask again at once for ever (the waits added up
    # to nothing); an HTTP date, which RFC 9110 allows, raised a bare ValueError.
    monkeypatch.setattr(aio, "RATE_LIMIT_WAIT_S", 1.5)
    body = b'{"error":{"code":"rate_limited","message":"slow down"}}'
    answer = b"HTTP/1.1 429 Too Many Requests\r\nRetry-After: %s\r\nContent-Length: %d\r\n\r\n%s"
    asked = 0

    async def session(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal asked
        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
            while True:
                await reader.readuntil(b"\r\n\r\n")
                asked += 1
                writer.write(answer % (retry_after.encode(), len(body), body))
                await writer.drain()

    server = await asyncio.start_server(session, "127.0.0.1", 0)
    async with server:
        url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
        client = LiquidationClient(api_key="pf_x", base_url=url)
        started = time.monotonic()
        with pytest.raises(RateLimitError, match="slow down"):
            async with asyncio.timeout(5.0):
                await client.markets()
        await client.aclose()
    assert asked == 2  # the first answer, then one more after a second's wait
    assert 1.0 <= time.monotonic() - started < 2.5


def test_a_heatmap_source_or_market_the_sdk_cannot_ask_is_refused() -> None:
    # source="foo" answered the estimated map, as if it had been asked for; "BTC/USDT" missed
    # the route and read as a wrong server URL.
    with SyncLiquidationClient(api_key="pf_x", base_url="http://127.0.0.1:9") as liq:
        with pytest.raises(BadRequestError, match="source must be 'estimated' or 'measured'"):
            liq.heatmap("BTC-PERP", source="foo")  # type: ignore[call-overload]
        with pytest.raises(BadRequestError, match="'BTC/USDT' is not a market name"):
            liq.heatmap("BTC/USDT")
        # "" asked GET /v1/heatmap/, a route no server has: the answer blamed the server URL.
        for empty in ("", "  "):
            with pytest.raises(BadRequestError, match="no market given: name one such as BTC"):
                liq.heatmap(empty)
        with pytest.raises(TypeError, match="market must be a market name such as 'BTC-PERP'"):
            liq.heatmap(None)  # type: ignore[call-overload]


async def test_a_dead_letter_limit_of_0_is_refused_not_read_as_the_default(tmp_path: Path) -> None:
    # dead_letters(id, limit=0) listed 100 and replay_dead_letters(id, limit=0) replayed up to
    # 100: a limit of 0 was sent as no limit (`purpleflea webhooks replay ID --limit 0` too).
    async with running_server(make_config(tmp_path)) as live:
        client = LiquidationClient(api_key=live.key, base_url=live.url)
        hook = await client.create_webhook("http://127.0.0.1:9/hook")
        for call in (client.dead_letters, client.replay_dead_letters):
            with pytest.raises(BadRequestError, match="limit must be between 1 and 1000, got 0"):
                await call(hook["id"], limit=0)
        assert (await client.dead_letters(hook["id"], limit=1))["total"] == 0
        await client.aclose()


async def test_a_stream_told_to_give_up_raises_after_that_long() -> None:
    with refused_url() as url:
        client = LiquidationClient(api_key="pf_x", base_url=url)
        started = time.monotonic()
        with pytest.raises(ServerUnreachableError) as failed:
            async with client.stream(give_up_after=0.5, max_backoff=0.2):
                pytest.fail("connected to nothing")
        assert 0.5 <= time.monotonic() - started < 2.0
    assert str(failed.value).startswith(f"stream: no Purple Flea server answered at {url} for ")


async def test_times_are_taken_as_a_builder_has_them(tmp_path: Path) -> None:
    # start=time.time() * 1000 (a float) and start=datetime(...) were refused by the server
    # ("start must be an integer, got '1796570068750.918'").
    async with running_server(make_config(tmp_path)) as live:
        await live.push(venue_event(ts=1_760_126_400_000))  # 2025-10-10T20:00Z
        client = LiquidationClient(api_key=live.key, base_url=live.url)
        aware = await client.history(start=datetime(2025, 10, 10, 19, tzinfo=UTC))
        naive = await client.history(start=datetime(2025, 10, 10, 19), end=1_760_126_400_000.7)
        after = await client.history(start=datetime(2025, 10, 10, 21))
        buckets = await client.aggregate(start=1_760_126_000_000.0, end=time.time() * 1000)
        await client.aclose()
    assert len(aware.events) == 1
    assert len(naive.events) == 1  # naive is UTC; the end (exclusive) rounds to ...001
    assert after.events == []
    assert sum(b.count for b in buckets) == 1


@asynccontextmanager
async def _idle_closing_server(body: bytes) -> AsyncIterator[tuple[str, list[int]]]:
    """A server that answers each connection's first request with the JSON ``body`` and
    closes it unanswered at the next (its keep-alive ran out meanwhile); with the list that
    counts the connections."""
    answer = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
    connections = [0]

    async def session(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections[0] += 1
        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
            await reader.readuntil(b"\r\n\r\n")
            writer.write(answer % (len(body), body))
            await writer.drain()
            await reader.readuntil(b"\r\n\r\n")  # the next request: the idle close meets it
        writer.close()

    server = await asyncio.start_server(session, "127.0.0.1", 0)
    async with server:
        yield f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}", connections


async def test_a_get_on_a_kept_connection_the_server_closed_meanwhile_is_asked_again() -> None:
    # A server closes a connection idle for its keep-alive (uvicorn: 5 s) while the client
    # reuses it: the request is read by nobody and the connection ends without an answer (a
    # /v1/metrics flood met it under CPU burners: httpx.ReadError). With one server the SDK
    # said "no Purple Flea server answers" of a server that was answering. A GET is asked
    # again on a new connection (RFC 9112 9.3.1), once.
    async with _idle_closing_server(b'{"markets":[]}') as (url, connections):
        client = LiquidationClient(api_key="pf_x", base_url=url)
        async with asyncio.timeout(10.0):
            assert await client.markets() == []
            assert await client.markets() == []  # its connection closed unanswered, then asked
        await client.aclose()
    assert connections == [2]


async def test_a_webhook_listing_on_a_kept_connection_closed_meanwhile_is_asked_again() -> None:
    # webhooks() and dead_letters() are GETs too, but went through the path of requests that
    # change something, which is never asked twice: the idle close above reported a listing
    # as "no server answers" of a server that was answering.
    async with _idle_closing_server(b'{"webhooks":[]}') as (url, connections):
        client = LiquidationClient(api_key="pf_x", base_url=url)
        async with asyncio.timeout(10.0):
            assert await client.webhooks() == []
            assert await client.webhooks() == []
        await client.aclose()
    assert connections == [2]


async def test_a_create_on_a_kept_connection_closed_meanwhile_is_not_sent_twice() -> None:
    # Only a GET is asked again: the server may have made the webhook before the connection
    # ended, so a create is reported (with its advice to list first), never repeated.
    async with _idle_closing_server(b'{"webhooks":[]}') as (url, connections):
        client = LiquidationClient(api_key="pf_x", base_url=url)
        async with asyncio.timeout(10.0):
            assert await client.webhooks() == []
            with pytest.raises(ServerUnreachableError) as failed:
                await client.create_webhook("https://example.com/hook")
        await client.aclose()
    assert connections == [1]
    assert str(failed.value).endswith("list what is there (webhooks()) before you retry")


def test_a_default_url_no_server_answers_names_the_server_recorded_in_this_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # `scripts/run --port 0` (port 8000 taken) and then the README's watch.py: the commands
    # found the server through data/server.json, the SDK said only "no Purple Flea server
    # answers at http://127.0.0.1:8000 ...: start one with `purpleflea serve`" of a server
    # that was running.
    monkeypatch.delenv("PURPLEFLEA_URL", raising=False)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").mkdir()
    running = "http://127.0.0.1:8123"
    (tmp_path / "data" / "server.json").write_text(f'{{"url": "{running}", "pid": {os.getpid()}}}')
    said = (
        f"`purpleflea serve` in this folder runs at {running} (data/server.json): set "
        f"PURPLEFLEA_URL={running}"
    )
    with refused_url() as nowhere:
        monkeypatch.setattr("purpleflea.client._config.DEFAULT_URL", nowhere)
        with (
            SyncLiquidationClient(api_key="pf_x") as liq,
            pytest.raises(ServerUnreachableError) as failed,
        ):
            liq.markets()
        assert str(failed.value).endswith(said)
        client = LiquidationClient(api_key="pf_x")

        async def stream() -> None:
            async with client.stream(give_up_after=0.5):
                pass

        with (
            caplog.at_level(logging.WARNING, "purpleflea.client"),
            pytest.raises(ServerUnreachableError) as gave_up,
        ):
            asyncio.run(stream())
        assert said in caplog.text
        assert str(gave_up.value).endswith(said)
    # Given a URL, the user chose it: no word of the folder's server.
    with refused_url() as chosen_url:
        with (
            SyncLiquidationClient(api_key="pf_x", base_url=chosen_url) as liq,
            pytest.raises(ServerUnreachableError) as chosen,
        ):
            liq.markets()
        assert "data/server.json" not in str(chosen.value)
