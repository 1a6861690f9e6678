"""Hyperliquid's open-interest poller end to end: ``perpDexs``, then each perp dex's
``metaAndAssetCtxs``, against the loopback fake speaking the documented protocol."""

from __future__ import annotations

import dataclasses
import itertools
import json
import time

import httpx
import pytest

from purpleflea.ingest.pollers import Poller
from purpleflea.model import MarketSnapshot, instrument_of
from purpleflea.venues import registry
from purpleflea.venues.hyperliquid import open_interest
from purpleflea.venues.venue import PerScope, PollSource
from tests.fakes.hyperliquid import FakeHyperliquid

[SOURCE] = open_interest.SOURCES
assert SOURCE.per_scope is not None
SPEC: PerScope = SOURCE.per_scope
NOW = 1_700_000_000.0


def _source(url: str, pause: float = 0.0) -> PollSource:
    return dataclasses.replace(
        SOURCE, urls=(url,), per_scope=dataclasses.replace(SPEC, pause=pause)
    )


def _poller(source: PollSource, client: httpx.AsyncClient, got: list[MarketSnapshot]) -> Poller:
    return Poller(source, client, got.extend, registry.market_of, {}, clock=lambda: NOW)


def _readings(got: list[MarketSnapshot]) -> dict[str, tuple[str, float, float]]:
    return {s.symbol: (s.market, s.mark_price, s.open_interest) for s in got}


MARKETS = {
    "BTC": (100_000.0, 200.0),
    "ETH": (3_000.0, 5_000.0),
    "xyz:TSLA": (400.0, 1_000.0),
    # HyENA's BTC: another listing of BTC-PERP with its own price, book and open interest.
    "hyna:BTC": (105_000.0, 50.0),
}


async def test_every_perp_dex_is_polled_and_a_builder_dexs_coin_is_its_own_listing() -> None:
    # Before, only the first perp dex was asked (metaAndAssetCtxs without "dex"): TSLA-PERP
    # and HyENA's BTC never had a reading though their liquidations reach the stream.
    got: list[MarketSnapshot] = []
    async with FakeHyperliquid(markets=dict(MARKETS)) as fake, httpx.AsyncClient() as client:
        poller = _poller(_source(fake.info_url), client, got)
        assert await poller.poll_once() == SOURCE.interval
    assert [kind for _, kind, _ in fake.requests] == ["perpDexs"] + ["metaAndAssetCtxs"] * 3
    assert _readings(got) == {
        "BTC": ("BTC-PERP", 100_000.0, 200.0),
        "ETH": ("ETH-PERP", 3_000.0, 5_000.0),
        "xyz:TSLA": ("TSLA-PERP", 400.0, 1_000.0),
        "hyna:BTC": ("BTC-PERP", 105_000.0, 50.0),
    }
    # Two listings of BTC-PERP, each with its own mark: neither overwrites the other.
    btc = [s for s in got if s.market == "BTC-PERP"]
    assert sorted(instrument_of(s) for s in btc) == ["hyperliquid:BTC", "hyperliquid:hyna:BTC"]
    assert poller.scopes == ("", "hyna", "xyz")
    assert (poller.stats.polls, poller.stats.snapshots, poller.stats.errors) == (1, 4, {})


async def test_a_failing_dex_does_not_blank_the_others() -> None:
    # A dex perpDexs lists but metaAndAssetCtxs answers null (as the real one answers a dex
    # it does not know): that dex is left out, every other is delivered.
    got: list[MarketSnapshot] = []
    async with FakeHyperliquid(markets=dict(MARKETS)) as fake, httpx.AsyncClient() as client:
        fake.broken = {"gone"}
        poller = _poller(_source(fake.info_url), client, got)
        await poller.poll_once()
    assert set(_readings(got)) == {"BTC", "ETH", "xyz:TSLA", "hyna:BTC"}
    assert poller.stats.errors == {"PollError": 1}
    assert "'gone'" in poller.stats.last_error
    assert poller.stats.polls == 1


def _answers(*perp_dexs: int) -> tuple[httpx.MockTransport, list[dict[str, str]]]:
    """A Hyperliquid answering perpDexs with each status of ``perp_dexs`` in turn (200:
    ``[null, {"name": "xyz"}]``), the first dex with BTC and xyz with TSLA, a delisted coin
    and a coin named as the first dex's; every request is kept."""
    statuses = iter(perp_dexs)
    asked: list[dict[str, str]] = []

    def answer(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        asked.append(body)
        if body["type"] == "perpDexs":
            status = next(statuses)
            return httpx.Response(status, json=[None, {"name": "xyz"}] if status == 200 else None)
        if body.get("dex") == "xyz":
            universe = [
                {"name": "xyz:TSLA"},
                {"name": "xyz:OLD", "isDelisted": True},
                {"name": "BTC"},
            ]
            contexts = [
                {"markPx": "400.0", "openInterest": "1000.0"},
                {"markPx": "9.0", "openInterest": "0.0"},
                {"markPx": "1.0", "openInterest": "7.0"},
            ]
            return httpx.Response(200, json=[{"universe": universe}, contexts])
        universe, contexts = [{"name": "BTC"}], [{"markPx": "100000.0", "openInterest": "2.0"}]
        return httpx.Response(200, json=[{"universe": universe}, contexts])

    return httpx.MockTransport(answer), asked


async def test_the_last_dex_list_is_asked_while_perp_dexs_fails() -> None:
    transport, asked = _answers(503, 200, 503)
    got: list[MarketSnapshot] = []
    poller = _poller(_source("https://hl.test/info"), httpx.AsyncClient(transport=transport), got)
    await poller.poll_once()  # no list yet: the first dex alone
    assert set(_readings(got)) == {"BTC"}
    await poller.poll_once()
    await poller.poll_once()  # the list fails again: the one read before is asked
    assert [a.get("dex", "") for a in asked if a["type"] != "perpDexs"] == [
        "",
        "",
        "xyz",
        "",
        "xyz",
    ]
    # The delisted builder-dex coin gives no reading, as on the first dex; a coin a builder
    # dex's answer names without its prefix would be read as the first dex's BTC listing and
    # overwrite its mark: it is not read (live answers prefix every coin, "xyz:TSLA").
    assert [s.symbol for s in got] == ["BTC", "BTC", "xyz:TSLA", "BTC", "xyz:TSLA"]
    assert {s.mark_price for s in got if s.symbol == "BTC"} == {100_000.0}
    assert poller.stats.errors == {"HTTPStatusError": 2}


async def test_a_rate_limit_mid_round_keeps_what_was_read_and_waits() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        if body["type"] == "perpDexs":
            return httpx.Response(200, json=[None, {"name": "xyz"}])
        if body.get("dex") == "xyz":
            return httpx.Response(429, headers={"Retry-After": "90"})
        return httpx.Response(
            200, json=[{"universe": [{"name": "BTC"}]}, [{"markPx": "1.0", "openInterest": "2"}]]
        )

    got: list[MarketSnapshot] = []
    client = httpx.AsyncClient(transport=httpx.MockTransport(answer))
    poller = _poller(_source("https://hl.test/info"), client, got)
    assert await poller.poll_once() == 90.0
    assert [s.symbol for s in got] == ["BTC"]
    assert poller.stats.errors == {"rate_limited": 1}


async def test_requests_are_a_pause_apart_and_the_sampler_reserves_their_weight() -> None:
    # Hyperliquid docs, "Rate limits": 1200 weight a minute per IP; perpDexs and
    # metaAndAssetCtxs are "other documented info requests", weight 20. One request every
    # PAUSE seconds, however many dexes perpDexs lists, spends at most 20 x 60 / PAUSE a
    # minute, what the position sampler leaves the poller.
    pause = 0.05
    async with FakeHyperliquid(markets=dict(MARKETS)) as fake, httpx.AsyncClient() as client:
        fake.broken = {"gone", "other"}
        poller = Poller(
            _source(fake.info_url, pause), client, lambda _: None, registry.market_of, {}
        )
        started = time.monotonic()
        wait = await poller.poll_once()
        elapsed = time.monotonic() - started
    times = [t for t, _, _ in fake.requests]
    assert len(times) == 6  # perpDexs and five dexes
    assert min(b - a for a, b in itertools.pairwise(times)) >= pause * 0.9
    # The next round starts a minute after this one began, and never sooner than a pause.
    assert wait == pytest.approx(SOURCE.interval - elapsed, abs=0.05)
    assert open_interest.PAUSE == 10.0
    assert open_interest.most_weight_per_minute(SOURCE) == 120.0
    [sampling] = registry.position_sources()
    assert sampling.reserved_weight_per_minute == 120.0


async def test_a_round_longer_than_the_interval_still_waits_a_pause() -> None:
    # Many dexes make a round longer than the interval: the next round's first request still
    # comes a pause after this round's last, so no minute holds more than 60 / pause requests.
    pause = 0.05
    async with FakeHyperliquid(markets=dict(MARKETS)) as fake, httpx.AsyncClient() as client:
        source = dataclasses.replace(_source(fake.info_url, pause), interval=0.1)
        poller = Poller(source, client, lambda _: None, registry.market_of, {})
        assert await poller.poll_once() == pause  # 4 requests after the list: 0.2 s > 0.1 s
