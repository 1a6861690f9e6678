"""Open-interest and mark-price pollers over the exchanges' public REST endpoints.

The heatmap needs, per instrument, one side's open interest in coins and the mark price. Each
exchange's bulk endpoint is read by a pure ``parse_*`` function (body bytes -> :class:`Reading`
rows, contracts converted with the instrument catalog); :class:`Poller` fetches them on an
interval, slows down when told to (HTTP 429/418 with ``Retry-After``), and hands
:class:`~purpleflea.model.MarketSnapshot` batches to a sink.

Open interest is one side (longs = shorts). Bybit's ``openInterest`` is now documented as both
sides (EXCHANGES.md trap 14), so its ``singleOpenInterest`` is preferred when present.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import httpx

from purpleflea.ingest.connection import Alarm
from purpleflea.model import Catalog, MarketSnapshot

log = logging.getLogger("purpleflea.ingest.pollers")


class Reading(NamedTuple):
    """One instrument's mark price and one-side open interest in coins."""

    symbol: str
    mark_price: float
    open_interest: float


class PollError(ValueError):
    """A REST body could not be read."""


def _body(exchange: str, body: bytes) -> Any:
    try:
        return json.loads(body)
    except ValueError as exc:
        raise PollError(f"{exchange} open interest: not JSON: {exc}") from None


def _list(exchange: str, value: Any) -> list[dict[str, Any]]:
    if not isinstance(value, list):
        raise PollError(f"{exchange} open interest: expected a list, got {type(value).__name__}")
    return [row for row in value if isinstance(row, dict)]


def _num(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) and number >= 0 else None


def _reading(symbol: Any, mark: Any, open_interest: Any) -> Reading | None:
    price, oi = _num(mark), _num(open_interest)
    if not isinstance(symbol, str) or price is None or price <= 0 or oi is None:
        return None
    return Reading(symbol, price, oi)


def _keep(rows: list[Reading | None]) -> list[Reading]:
    return [row for row in rows if row is not None]


def parse_bybit_tickers(body: bytes, instruments: Catalog) -> list[Reading]:
    """``GET v5/market/tickers?category=linear|inverse``: ``result.list[]``.

    Linear open interest is in coins; inverse (BTCUSD) in USD.
    """
    del instruments
    rows = _list("bybit", (_body("bybit", body).get("result") or {}).get("list"))
    found = []
    for row in rows:
        symbol = row.get("symbol")
        one_side = row.get("singleOpenInterest") or row.get("openInterest")
        reading = _reading(symbol, row.get("markPrice"), one_side)
        if reading is not None and isinstance(symbol, str) and symbol.endswith("USD"):
            reading = reading._replace(open_interest=reading.open_interest / reading.mark_price)
        found.append(reading)
    return _keep(found)


def parse_okx(body: bytes, instruments: Catalog) -> list[Reading]:
    """``GET api/v5/public/open-interest`` merged with ``mark-price``: both bodies, one list.

    ``oiCcy`` is open interest in coins, so no contract size is needed; ``markPx`` rows come
    from the mark-price endpoint and are joined by ``instId``.
    """
    del instruments
    rows = _list("okx", _body("okx", body).get("data"))
    marks = {row.get("instId"): row.get("markPx") for row in rows if "markPx" in row}
    return _keep(
        [
            _reading(row.get("instId"), marks.get(row.get("instId")), row.get("oiCcy"))
            for row in rows
            if "oiCcy" in row
        ]
    )


def parse_bitmex(body: bytes, instruments: Catalog) -> list[Reading]:
    """``GET api/v1/instrument/active``: ``openInterest`` contracts, ``markPrice``."""
    found = []
    for row in _list("bitmex", _body("bitmex", body)):
        reading = _reading(row.get("symbol"), row.get("markPrice"), row.get("openInterest"))
        if reading is None:
            continue
        instrument = instruments.get(reading.symbol)
        if instrument is None or instrument.kind == "quanto":
            continue  # coins unknown without the contract terms
        if instrument.kind == "inverse":
            coins = reading.open_interest * instrument.contract_size / reading.mark_price
        else:
            coins = reading.open_interest * instrument.contract_size
        found.append(reading._replace(open_interest=coins))
    return found


def parse_dydx(body: bytes, instruments: Catalog) -> list[Reading]:
    """``GET v4/perpetualMarkets``: ``markets{ticker: {oraclePrice, openInterest}}`` (coins)."""
    del instruments
    markets = _body("dydx_v4", body).get("markets")
    if not isinstance(markets, dict):
        raise PollError("dydx_v4 open interest: 'markets' is not an object")
    return _keep(
        [
            _reading(ticker, row.get("oraclePrice"), row.get("openInterest"))
            for ticker, row in markets.items()
            if isinstance(row, dict)
        ]
    )


def parse_hyperliquid(body: bytes, instruments: Catalog) -> list[Reading]:
    """``POST info {"type":"metaAndAssetCtxs"}``: ``[meta, ctxs]``, ctxs in universe order."""
    del instruments
    document = _body("hyperliquid", body)
    if not (isinstance(document, list) and len(document) == 2 and isinstance(document[0], dict)):
        raise PollError("hyperliquid open interest: expected [meta, assetCtxs]")
    universe = _list("hyperliquid", document[0].get("universe"))
    contexts = _list("hyperliquid", document[1])
    return _keep(
        [
            _reading(asset.get("name"), ctx.get("markPx"), ctx.get("openInterest"))
            for asset, ctx in zip(universe, contexts, strict=False)
        ]
    )


def parse_gate(body: bytes, instruments: Catalog) -> list[Reading]:
    """``GET futures/usdt/tickers``: ``total_size`` contracts x quanto multiplier = coins."""
    found = []
    for row in _list("gate", _body("gate", body)):
        reading = _reading(row.get("contract"), row.get("mark_price"), row.get("total_size"))
        instrument = instruments.get(reading.symbol) if reading else None
        if reading is None or instrument is None or instrument.kind != "linear":
            continue
        found.append(
            reading._replace(open_interest=reading.open_interest * instrument.contract_size)
        )
    return found


def parse_binance_premium_index(body: bytes, instruments: Catalog) -> list[Reading]:
    """``GET fapi/v1/premiumIndex``: marks only (open interest comes per symbol).

    Returned with ``open_interest`` 0; :func:`parse_binance_open_interest` fills it in.
    """
    del instruments
    return _keep(
        [
            _reading(row.get("symbol"), row.get("markPrice"), 0)
            for row in _list("binance_usdm", _body("binance_usdm", body))
        ]
    )


def parse_binance_open_interest(body: bytes) -> tuple[str, float]:
    """``GET fapi/v1/openInterest?symbol=``: ``{"openInterest": coins, "symbol": ..}``."""
    row = _body("binance_usdm", body)
    oi = _num(row.get("openInterest")) if isinstance(row, dict) else None
    if oi is None or not isinstance(row.get("symbol"), str):
        raise PollError(f"binance_usdm open interest: unreadable row {row!r:.80}")
    return row["symbol"], oi


Parse = Callable[[bytes, Catalog], list[Reading]]


@dataclass(frozen=True)
class PollSource:
    """One bulk endpoint of one exchange and how to read it."""

    exchange: str
    urls: tuple[str, ...]  # bodies of several URLs are merged (OKX: open interest + marks)
    parse: Parse
    interval: float = 60.0
    method: str = "GET"
    payload: Mapping[str, str] | None = None


POLL_SOURCES: tuple[PollSource, ...] = (
    PollSource(
        "bybit", ("https://api.bybit.com/v5/market/tickers?category=linear",), parse_bybit_tickers
    ),
    PollSource(
        "okx",
        (
            "https://www.okx.com/api/v5/public/open-interest?instType=SWAP",
            "https://www.okx.com/api/v5/public/mark-price?instType=SWAP",
        ),
        parse_okx,
    ),
    PollSource("bitmex", ("https://www.bitmex.com/api/v1/instrument/active",), parse_bitmex),
    PollSource("dydx_v4", ("https://indexer.dydx.trade/v4/perpetualMarkets",), parse_dydx),
    PollSource(
        "hyperliquid",
        ("https://api.hyperliquid.xyz/info",),
        parse_hyperliquid,
        method="POST",
        payload={"type": "metaAndAssetCtxs"},
    ),
    PollSource("gate", ("https://api.gateio.ws/api/v4/futures/usdt/tickers",), parse_gate),
)


def merge_bodies(bodies: list[bytes]) -> bytes:
    """Join several ``{"data": [...]}`` bodies into one (OKX's two endpoints)."""
    if len(bodies) == 1:
        return bodies[0]
    rows: list[Any] = []
    for body in bodies:
        rows.extend(_list("merge", _body("merge", body).get("data")))
    return json.dumps({"data": rows}).encode()


MarketOf = Callable[[str, str], str | None]
Sink = Callable[[list[MarketSnapshot]], None]


@dataclass
class PollStats:
    polls: int = 0
    snapshots: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    last_error: str = ""


class Poller:
    """Polls one source forever; answers 429/418 by waiting as long as the exchange asks."""

    def __init__(
        self,
        source: PollSource,
        client: httpx.AsyncClient,
        sink: Sink,
        market_of: MarketOf,
        instruments: Catalog,
        *,
        clock: Callable[[], float] = time.time,
        alarm: Alarm | None = None,
    ) -> None:
        self.source = source
        # Shared with the exchange's websocket connections: one WARNING per exchange outage.
        self.alarm = alarm or Alarm()
        self.client = client
        self.sink = sink
        self.market_of = market_of
        self.instruments = instruments
        self.clock = clock
        self.stats = PollStats()

    async def poll_once(self) -> float:
        """Fetch, parse and deliver once; returns how long to wait before the next poll."""
        source = self.source
        try:
            bodies = []
            for url in source.urls:
                response = await self.client.request(source.method, url, json=source.payload)
                if response.status_code in (418, 429):
                    return self._rate_limited(response)
                response.raise_for_status()
                bodies.append(response.content)
            readings = source.parse(merge_bodies(bodies), self.instruments)
        except (httpx.HTTPError, PollError) as exc:
            self._error(type(exc).__name__, str(exc))
            return source.interval
        self._deliver(readings)
        return source.interval

    def _deliver(self, readings: list[Reading]) -> None:
        source = self.source
        ts = int(self.clock() * 1000)
        snapshots = []
        for reading in readings:
            market = self.market_of(source.exchange, reading.symbol)
            if market is None:
                continue
            snapshots.append(
                MarketSnapshot(
                    exchange=source.exchange,
                    symbol=reading.symbol,
                    market=market,
                    ts=ts,
                    mark_price=reading.mark_price,
                    open_interest=reading.open_interest,
                    open_interest_usd=reading.open_interest * reading.mark_price,
                )
            )
        self.stats.polls += 1
        self.stats.snapshots += len(snapshots)
        self.alarm.recovered(self._alarm_key)
        self.sink(snapshots)

    def _rate_limited(self, response: httpx.Response) -> float:
        wait = _retry_after(response, default=self.source.interval * 2)
        self._error("rate_limited", f"HTTP {response.status_code}; waiting {wait:.0f} s")
        return wait

    async def run(self) -> None:
        while True:
            await asyncio.sleep(await self.poll_once())

    @property
    def _alarm_key(self) -> str:
        return f"{self.source.exchange} poller"

    def _error(self, kind: str, message: str) -> None:
        self.stats.errors[kind] = self.stats.errors.get(kind, 0) + 1
        self.stats.last_error = f"{kind}: {message}"
        loud = self.alarm.failed(self._alarm_key)
        (log.warning if loud else log.debug)(
            "%s: open-interest poll of %s failed (%s); retrying every %.0f s",
            self.source.exchange,
            self.source.urls[0],
            self.stats.last_error,
            self.source.interval,
        )


class BinanceUsdmPoller(Poller):
    """Binance USD-M has no bulk open-interest endpoint: marks come in one call
    (``premiumIndex``), open interest one symbol at a time for the symbols asked for, paced
    well inside the 2,400 request-weight per minute limit (each call weighs 1)."""

    BASE_URL = "https://fapi.binance.com"

    def __init__(
        self,
        symbols: tuple[str, ...],
        client: httpx.AsyncClient,
        sink: Sink,
        market_of: MarketOf,
        *,
        interval: float = 60.0,
        pause: float = 0.05,
        clock: Callable[[], float] = time.time,
        alarm: Alarm | None = None,
        base_url: str = BASE_URL,
    ) -> None:
        self.marks_url = f"{base_url}/fapi/v1/premiumIndex"
        self.open_interest_url = f"{base_url}/fapi/v1/openInterest"
        source = PollSource(
            "binance_usdm", (self.marks_url,), parse_binance_premium_index, interval
        )
        super().__init__(source, client, sink, market_of, {}, clock=clock, alarm=alarm)
        self.symbols = symbols
        self.pause = pause

    async def poll_once(self) -> float:
        interval = self.source.interval
        try:
            response = await self.client.get(self.marks_url)
            if response.status_code in (418, 429):
                return self._rate_limited(response)
            response.raise_for_status()
            marks = {
                r.symbol: r.mark_price for r in parse_binance_premium_index(response.content, {})
            }
            readings = []
            for symbol in self.symbols:
                if symbol not in marks:
                    continue
                response = await self.client.get(self.open_interest_url, params={"symbol": symbol})
                if response.status_code in (418, 429):
                    return self._rate_limited(response)
                response.raise_for_status()
                _, coins = parse_binance_open_interest(response.content)
                readings.append(Reading(symbol, marks[symbol], coins))
                await asyncio.sleep(self.pause)
        except (httpx.HTTPError, PollError) as exc:
            self._error(type(exc).__name__, str(exc))
            return interval
        self._deliver(readings)
        return interval


def _retry_after(response: httpx.Response, default: float) -> float:
    try:
        return max(1.0, float(response.headers.get("Retry-After", default)))
    except ValueError:
        return default
