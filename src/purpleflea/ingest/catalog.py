"""Instrument catalogs: the contract facts normalizers need, fetched, refreshed and cached.

Each exchange that reports liquidations in contracts publishes its contract list over public
REST. :data:`SOURCES` says where, and a pure ``parse_*`` function per exchange turns a response
body into :class:`~purpleflea.model.Instrument` rows (tested with documented responses).
:class:`Catalogs` keeps the current catalog of every exchange: it starts from the last snapshot
it saved (or the snapshot bundled with the package, so a start with no network still
normalizes the major contracts correctly), refreshes from REST, and saves what it fetched.

Exchanges that report coins or USD (Bybit, Deribit, dYdX) need no contract sizes, but their
feeds subscribe per instrument, so their catalogs are the list of symbols to subscribe to
(contract size 1: one coin for linear, one USD for inverse). Binance USD-M, Hyperliquid and
Bitget need no catalog (Bitget reports quote amounts; Binance subscribes to all markets).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import httpx
import msgspec

from purpleflea.model import ContractKind, Instrument

log = logging.getLogger("purpleflea.ingest.catalog")

Parser = Callable[[bytes], list[Instrument]]


class CatalogError(ValueError):
    """A REST instrument list could not be read."""


def _json(exchange: str, body: bytes) -> Any:
    try:
        return json.loads(body)
    except ValueError as exc:
        raise CatalogError(f"{exchange} instruments: not JSON: {exc}") from None


def _rows(exchange: str, value: Any, where: str) -> list[dict[str, Any]]:
    if not isinstance(value, list) or not all(isinstance(row, dict) for row in value):
        raise CatalogError(f"{exchange} instruments: {where} is not a list of objects")
    return value


def _size(exchange: str, symbol: str, value: Any) -> float | None:
    try:
        size = float(value)
    except (TypeError, ValueError):
        log.warning("%s instruments: %s has no usable contract size: %r", exchange, symbol, value)
        return None
    return size if size > 0 else None


def parse_binance_coinm(body: bytes) -> list[Instrument]:
    """``GET dapi/v1/exchangeInfo``: ``symbols[].contractSize`` is USD per contract."""
    rows = _rows("binance_coinm", _json("binance_coinm", body).get("symbols"), "symbols")
    found = []
    for row in rows:
        size = _size("binance_coinm", str(row.get("symbol")), row.get("contractSize"))
        if size is not None:
            found.append(_inverse("binance_coinm", str(row["symbol"]), size))
    return found


def parse_okx(body: bytes) -> list[Instrument]:
    """``GET api/v5/public/instruments``: one contract is ``ctVal * ctMult`` of ``ctValCcy``.

    ``ctType`` linear means ``ctValCcy`` is the base coin; inverse means it is USD.
    """
    rows = _rows("okx", _json("okx", body).get("data"), "data")
    found = []
    for row in rows:
        symbol = str(row.get("instId"))
        kind = row.get("ctType")
        size = _size("okx", symbol, row.get("ctVal"))
        multiplier = _size("okx", symbol, row.get("ctMult") or 1)
        if kind not in ("linear", "inverse") or size is None or multiplier is None:
            continue
        found.append(
            Instrument(exchange="okx", symbol=symbol, kind=kind, contract_size=size * multiplier)
        )
    return found


def parse_bitmex(body: bytes) -> list[Instrument]:
    """``GET api/v1/instrument/active``.

    Inverse (XBTUSD): one contract is one USD. Quanto (ETHUSD): ``multiplier`` satoshis per
    contract per 1.0 of price. Linear (SOLUSDT): ``underlyingToPositionMultiplier`` contracts
    per coin.
    """
    rows = _rows("bitmex", _json("bitmex", body), "body")
    # Quanto contracts settle in XBT: their USD size needs XBT's price, which the same list
    # carries as XBTUSD's mark (refreshed with the catalog; a quanto without it stays unsized).
    xbt_usd = next(
        (
            _size("bitmex", "XBTUSD", r.get("markPrice"))
            for r in rows
            if r.get("symbol") == "XBTUSD"
        ),
        None,
    )
    found = []
    for row in rows:
        symbol = str(row.get("symbol"))
        if row.get("isInverse"):
            found.append(_inverse("bitmex", symbol, 1.0))
        elif row.get("isQuanto"):
            size = _size("bitmex", symbol, abs(float(row.get("multiplier") or 0)) * 1e-8)
            if size is not None:
                found.append(
                    Instrument(
                        exchange="bitmex",
                        symbol=symbol,
                        kind="quanto",
                        contract_size=size,
                        settle_usd=xbt_usd,
                    )
                )
        else:
            per_coin = _size("bitmex", symbol, row.get("underlyingToPositionMultiplier"))
            if per_coin is not None:
                found.append(_linear("bitmex", symbol, 1.0 / per_coin))
    return found


def parse_kraken(body: bytes) -> list[Instrument]:
    """``GET derivatives/api/v3/instruments``: ``PI_``/``FI_`` are inverse USD contracts."""
    rows = _rows("kraken_futures", _json("kraken_futures", body).get("instruments"), "instruments")
    found = []
    for row in rows:
        symbol = str(row.get("symbol"))
        size = _size("kraken_futures", symbol, row.get("contractSize", 1))
        if size is None:
            continue
        if symbol.startswith(("PI_", "FI_")):
            found.append(_inverse("kraken_futures", symbol, size))
        elif symbol.startswith(("PF_", "FF_")):
            found.append(_linear("kraken_futures", symbol, size))
    return found


def parse_gate(body: bytes) -> list[Instrument]:
    """``GET futures/{settle}/contracts``: ``quanto_multiplier`` coins per contract.

    ``type: inverse`` contracts (BTC-settled BTC_USD) are one USD each.
    """
    rows = _rows("gate", _json("gate", body), "body")
    found = []
    for row in rows:
        symbol = str(row.get("name"))
        if row.get("type") == "inverse":
            found.append(_inverse("gate", symbol, 1.0))
            continue
        size = _size("gate", symbol, row.get("quanto_multiplier"))
        if size is not None:
            found.append(_linear("gate", symbol, size))
    return found


def parse_htx(body: bytes) -> list[Instrument]:
    """``swap_contract_info`` (linear and coin-margined): ``contract_size`` per contract.

    Linear (``BTC-USDT``): coins per contract. Coin-margined (``BTC-USD``): USD face value.
    """
    rows = _rows("htx", _json("htx", body).get("data"), "data")
    found = []
    for row in rows:
        symbol = str(row.get("contract_code"))
        size = _size("htx", symbol, row.get("contract_size"))
        if size is None:
            continue
        pair = symbol.split("-")
        if len(pair) >= 2 and pair[1] == "USD":
            found.append(_inverse("htx", symbol, size))
        else:
            found.append(_linear("htx", symbol, size))
    return found


_BYBIT_KINDS: dict[str, ContractKind] = {
    "LinearPerpetual": "linear",
    "LinearFutures": "linear",
    "InversePerpetual": "inverse",
    "InverseFutures": "inverse",
}


def parse_bybit(body: bytes) -> list[Instrument]:
    """``GET v5/market/instruments-info?category=linear|inverse``: ``result.list[]``.

    Only instruments with ``status: Trading`` are kept: the feed subscribes to each one.
    Sizes are in coins (linear) or USD (inverse), so the contract size is 1.
    """
    result = _json("bybit", body).get("result")
    rows = _rows("bybit", result.get("list") if isinstance(result, dict) else None, "result.list")
    found = []
    for row in rows:
        kind = _BYBIT_KINDS.get(str(row.get("contractType")))
        if kind is not None and row.get("status") == "Trading":
            found.append(
                Instrument(
                    exchange="bybit", symbol=str(row["symbol"]), kind=kind, contract_size=1.0
                )
            )
    return found


def parse_deribit(body: bytes) -> list[Instrument]:
    """``GET api/v2/public/get_instruments?currency=any&kind=future``: the perpetuals.

    Inverse perpetuals (``BTC-PERPETUAL``) trade USD amounts (``contract_size`` USD per
    contract); linear ones (``SOL_USDC-PERPETUAL``) coin amounts.
    """
    rows = _rows("deribit", _json("deribit", body).get("result"), "result")
    found = []
    for row in rows:
        symbol = str(row.get("instrument_name"))
        if row.get("settlement_period") != "perpetual" or not row.get("is_active", True):
            continue
        size = _size("deribit", symbol, row.get("contract_size"))
        if size is None:
            continue
        kind: ContractKind = "linear" if row.get("instrument_type") == "linear" else "inverse"
        found.append(Instrument(exchange="deribit", symbol=symbol, kind=kind, contract_size=size))
    return found


def parse_dydx(body: bytes) -> list[Instrument]:
    """``GET v4/perpetualMarkets``: ``markets{ticker: {status}}``, sizes in coins."""
    markets = _json("dydx_v4", body).get("markets")
    if not isinstance(markets, dict):
        raise CatalogError("dydx_v4 instruments: 'markets' is not an object")
    return [
        _linear("dydx_v4", str(ticker), 1.0)
        for ticker, row in markets.items()
        if isinstance(row, dict) and row.get("status", "ACTIVE") == "ACTIVE"
    ]


def _linear(exchange: str, symbol: str, size: float) -> Instrument:
    return Instrument(exchange=exchange, symbol=symbol, kind="linear", contract_size=size)


def _inverse(exchange: str, symbol: str, size: float) -> Instrument:
    return Instrument(exchange=exchange, symbol=symbol, kind="inverse", contract_size=size)


@dataclass(frozen=True)
class Source:
    """One public REST endpoint listing an exchange's contracts."""

    exchange: str
    url: str
    parse: Parser


SOURCES: tuple[Source, ...] = (
    Source("binance_coinm", "https://dapi.binance.com/dapi/v1/exchangeInfo", parse_binance_coinm),
    Source("okx", "https://www.okx.com/api/v5/public/instruments?instType=SWAP", parse_okx),
    Source("okx", "https://www.okx.com/api/v5/public/instruments?instType=FUTURES", parse_okx),
    Source("bitmex", "https://www.bitmex.com/api/v1/instrument/active", parse_bitmex),
    Source(
        "kraken_futures",
        "https://futures.kraken.com/derivatives/api/v3/instruments",
        parse_kraken,
    ),
    Source("gate", "https://api.gateio.ws/api/v4/futures/usdt/contracts", parse_gate),
    Source("gate", "https://api.gateio.ws/api/v4/futures/btc/contracts", parse_gate),
    Source("htx", "https://api.hbdm.com/linear-swap-api/v1/swap_contract_info", parse_htx),
    Source("htx", "https://api.hbdm.com/swap-api/v1/swap_contract_info", parse_htx),
    Source(
        "bybit",
        "https://api.bybit.com/v5/market/instruments-info?category=linear&limit=1000",
        parse_bybit,
    ),
    Source(
        "bybit",
        "https://api.bybit.com/v5/market/instruments-info?category=inverse&limit=1000",
        parse_bybit,
    ),
    Source(
        "deribit",
        "https://www.deribit.com/api/v2/public/get_instruments?currency=any&kind=future",
        parse_deribit,
    ),
    Source("dydx_v4", "https://indexer.dydx.trade/v4/perpetualMarkets", parse_dydx),
)


class LiveCatalog(Mapping[str, Instrument]):
    """One exchange's catalog whose contents are replaced on refresh.

    Normalizers hold this mapping, so a refresh reaches them without rebuilding feeds.
    """

    def __init__(self, rows: Mapping[str, Instrument] | None = None) -> None:
        self._rows: dict[str, Instrument] = dict(rows or {})

    def __getitem__(self, symbol: str) -> Instrument:
        return self._rows[symbol]

    def __iter__(self) -> Iterator[str]:
        return iter(self._rows)

    def __len__(self) -> int:
        return len(self._rows)

    def replace(self, rows: Mapping[str, Instrument]) -> None:
        self._rows = dict(rows)


_snapshot_decoder = msgspec.json.Decoder(dict[str, list[Instrument]])


def load_snapshot(path: Path | None = None) -> dict[str, list[Instrument]]:
    """Instruments by exchange from ``path``, or from the snapshot bundled with the package."""
    if path is None:
        data = resources.files("purpleflea.ingest").joinpath("instruments.json").read_bytes()
    else:
        data = path.read_bytes()
    return _snapshot_decoder.decode(data)


class Catalogs:
    """The current instrument catalog of every exchange, kept fresh from REST."""

    def __init__(self, cache_path: Path | None = None) -> None:
        self.cache_path = cache_path
        self._by_exchange: dict[str, LiveCatalog] = {}
        snapshot = load_snapshot()
        if cache_path is not None and cache_path.exists():
            try:
                snapshot.update(load_snapshot(cache_path))
            except (OSError, msgspec.ValidationError, msgspec.DecodeError) as exc:
                log.warning(
                    "instrument cache %s unreadable, using the bundled one: %s", cache_path, exc
                )
        for exchange, rows in snapshot.items():
            self.get(exchange).replace({row.symbol: row for row in rows})

    def get(self, exchange: str) -> LiveCatalog:
        """The live catalog of ``exchange`` (empty until something is known)."""
        return self._by_exchange.setdefault(exchange, LiveCatalog())

    async def refresh(
        self, client: httpx.AsyncClient, sources: tuple[Source, ...] = SOURCES
    ) -> dict[str, str]:
        """Fetch every source; returns ``{url: error}`` for the ones that failed.

        An exchange's catalog is replaced only when all of its sources answered, so a partial
        failure never drops instruments we knew.
        """
        results = await asyncio.gather(*(self._fetch(client, s) for s in sources))
        errors: dict[str, str] = {}
        fresh: dict[str, dict[str, Instrument]] = {}
        failed: set[str] = set()
        for source, result in zip(sources, results, strict=True):
            if isinstance(result, str):
                errors[source.url] = result
                failed.add(source.exchange)
            else:
                fresh.setdefault(source.exchange, {}).update((i.symbol, i) for i in result)
        for exchange, rows in fresh.items():
            if exchange not in failed and rows:
                self.get(exchange).replace(rows)
        if fresh and self.cache_path is not None:
            self._save()
        return errors

    async def _fetch(self, client: httpx.AsyncClient, source: Source) -> list[Instrument] | str:
        try:
            response = await client.get(source.url)
            response.raise_for_status()
            return source.parse(response.content)
        except (httpx.HTTPError, CatalogError) as exc:
            return f"{type(exc).__name__}: {exc}"

    def _save(self) -> None:
        assert self.cache_path is not None
        snapshot = {
            exchange: list(catalog.values()) for exchange, catalog in self._by_exchange.items()
        }
        self.cache_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.cache_path.with_suffix(".tmp")
        tmp.write_bytes(msgspec.json.encode(snapshot))
        tmp.replace(self.cache_path)
