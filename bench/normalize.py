"""Normalizer throughput: our Binance USD-M path against cryptofeed's, on the same frames.

Run (one command, from the repository root)::

    .bench-venv/bin/python bench/normalize.py

Set up the benchmark's own environment once (cryptofeed is never a project dependency)::

    python3 -m venv .bench-venv && .bench-venv/bin/pip install -e . cryptofeed

The frames are ``!forceOrder@arr`` combined-stream frames generated deterministically from
``--seed``. Both paths are timed from the raw frame to a built event handed to a no-op sink:

- ours: ``purpleflea.venues.binance.normalize_usdm(frame)`` (msgspec decode, checks, one
  ``VenueLiquidation``), each event passed to a no-op function;
- cryptofeed: ``BinanceFutures.message_handler(frame, conn, timestamp)`` (yapic JSON decode
  with ``parse_float=Decimal``, stream routing, ``_liquidations`` building its ``Liquidation``
  and awaiting the callback), with a no-op ``async`` callback, awaited in one coroutine.

cryptofeed fetches exchangeInfo over the network when a feed is built; here its symbol table
is filled beforehand from a synthetic exchangeInfo holding the benchmark's symbols, parsed by
its own ``BinanceFutures._parse_symbol_data``. If cryptofeed is not importable, only our path
is measured and the comparison is reported as skipped.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import math
import os
import platform
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import metadata
from typing import Any

from purpleflea.venues.binance import normalize_usdm

STREAM = "!forceOrder@arr"
START_MS = 1_735_689_600_000  # 2025-01-01T00:00:00Z
TARGET_RATIO = 3.0


@dataclass(frozen=True)
class Contract:
    """One USD-M contract: its price level, the decimals Binance prints, how often it liquidates."""

    symbol: str
    base: str
    quote: str
    price: float
    price_decimals: int
    qty_decimals: int
    weight: float

    @property
    def dated(self) -> bool:
        return "_" in self.symbol


# A liquidation mix like a busy day's: majors dominate, a long tail of alts, 1000x-prefixed
# memecoins, USDC-margined pairs and a few dated quarterlies. Prices are 2025-ish levels;
# decimals follow the contracts' pricePrecision / quantityPrecision.
CONTRACTS: tuple[Contract, ...] = (
    Contract("BTCUSDT", "BTC", "USDT", 95_000.0, 2, 3, 18.0),
    Contract("ETHUSDT", "ETH", "USDT", 3_300.0, 2, 3, 14.0),
    Contract("SOLUSDT", "SOL", "USDT", 190.0, 4, 2, 8.0),
    Contract("XRPUSDT", "XRP", "USDT", 2.3, 4, 1, 5.0),
    Contract("DOGEUSDT", "DOGE", "USDT", 0.33, 6, 0, 5.0),
    Contract("1000PEPEUSDT", "1000PEPE", "USDT", 0.0175, 7, 0, 4.0),
    Contract("BNBUSDT", "BNB", "USDT", 700.0, 3, 2, 2.5),
    Contract("SUIUSDT", "SUI", "USDT", 4.2, 6, 1, 2.5),
    Contract("WIFUSDT", "WIF", "USDT", 1.9, 7, 1, 2.0),
    Contract("1000SHIBUSDT", "1000SHIB", "USDT", 0.021, 6, 0, 1.5),
    Contract("1000BONKUSDT", "1000BONK", "USDT", 0.031, 7, 0, 1.5),
    Contract("1000FLOKIUSDT", "1000FLOKI", "USDT", 0.19, 5, 0, 1.0),
    Contract("ADAUSDT", "ADA", "USDT", 0.95, 5, 0, 2.0),
    Contract("AVAXUSDT", "AVAX", "USDT", 38.0, 4, 0, 1.5),
    Contract("LINKUSDT", "LINK", "USDT", 22.0, 3, 2, 1.5),
    Contract("LTCUSDT", "LTC", "USDT", 110.0, 2, 3, 1.0),
    Contract("BCHUSDT", "BCH", "USDT", 440.0, 2, 3, 0.7),
    Contract("DOTUSDT", "DOT", "USDT", 6.9, 3, 1, 0.8),
    Contract("TRXUSDT", "TRX", "USDT", 0.25, 5, 0, 0.6),
    Contract("NEARUSDT", "NEAR", "USDT", 5.1, 4, 0, 0.8),
    Contract("APTUSDT", "APT", "USDT", 8.9, 5, 1, 0.7),
    Contract("ARBUSDT", "ARB", "USDT", 0.78, 7, 1, 0.7),
    Contract("OPUSDT", "OP", "USDT", 1.9, 7, 1, 0.6),
    Contract("INJUSDT", "INJ", "USDT", 23.0, 6, 1, 0.5),
    Contract("TIAUSDT", "TIA", "USDT", 5.2, 7, 0, 0.5),
    Contract("ORDIUSDT", "ORDI", "USDT", 28.0, 3, 1, 0.5),
    Contract("ENAUSDT", "ENA", "USDT", 0.95, 4, 0, 1.0),
    Contract("FARTCOINUSDT", "FARTCOIN", "USDT", 1.2, 4, 1, 1.2),
    Contract("TRUMPUSDT", "TRUMP", "USDT", 28.0, 3, 1, 1.0),
    Contract("HYPEUSDT", "HYPE", "USDT", 22.0, 4, 2, 0.8),
    Contract("1000SATSUSDT", "1000SATS", "USDT", 0.00031, 7, 0, 0.3),
    Contract("1MBABYDOGEUSDT", "1MBABYDOGE", "USDT", 0.0021, 7, 0, 0.3),
    Contract("BTCUSDC", "BTC", "USDC", 95_000.0, 1, 3, 2.0),
    Contract("ETHUSDC", "ETH", "USDC", 3_300.0, 2, 3, 1.5),
    Contract("SOLUSDC", "SOL", "USDC", 190.0, 3, 2, 0.6),
    Contract("DOGEUSDC", "DOGE", "USDC", 0.33, 6, 0, 0.3),
    Contract("1000PEPEUSDC", "1000PEPE", "USDC", 0.0175, 7, 0, 0.3),
    Contract("XRPUSDC", "XRP", "USDC", 2.3, 4, 1, 0.3),
    Contract("BTCUSDT_250926", "BTC", "USDT", 97_000.0, 1, 3, 0.15),
    Contract("ETHUSDT_250926", "ETH", "USDT", 3_380.0, 2, 3, 0.1),
)


def _fmt(value: float, decimals: int) -> str:
    # Binance prints numbers as fixed-point strings at the contract's precision.
    return f"{value:.{decimals}f}"


def make_frames(count: int, seed: int) -> list[bytes]:
    """``count`` realistic combined-stream forceOrder frames, the same for the same seed.

    Prices random-walk per symbol; sides come in runs (cascades); notionals are log-normal
    (median ~1.5k USD, a tail into the millions); ~3% of orders expire partly filled.
    """
    rng = random.Random(seed)
    weights = [c.weight for c in CONTRACTS]
    prices = {c.symbol: c.price for c in CONTRACTS}
    side = "SELL"
    event_ms = START_MS
    frames: list[bytes] = []
    for contract in rng.choices(CONTRACTS, weights, k=count):
        if rng.random() > 0.85:
            side = "BUY" if side == "SELL" else "SELL"
        event_ms += int(rng.expovariate(1 / 40)) + 1
        price = prices[contract.symbol] * math.exp(rng.gauss(0.0, 0.002))
        prices[contract.symbol] = price
        step = 10.0**-contract.qty_decimals
        notional = min(rng.lognormvariate(math.log(1_500.0), 1.8), 25_000_000.0)
        qty = max(round(notional / price, contract.qty_decimals), step)
        filled, status = qty, "FILLED"
        if rng.random() < 0.03 and qty > step:
            filled = max(round(qty * rng.uniform(0.1, 0.9), contract.qty_decimals), step)
            status = "EXPIRED"
        # The IOC limit is past the fill price: below it for a SELL, above it for a BUY.
        slip = rng.uniform(0.002, 0.03)
        limit = price * (1 - slip if side == "SELL" else 1 + slip)
        payload = {
            "e": "forceOrder",
            "E": event_ms,
            "o": {
                "s": contract.symbol,
                "S": side,
                "o": "LIMIT",
                "f": "IOC",
                "q": _fmt(qty, contract.qty_decimals),
                "p": _fmt(limit, contract.price_decimals),
                "ap": _fmt(price, contract.price_decimals),
                "X": status,
                "l": _fmt(filled, contract.qty_decimals),
                "z": _fmt(filled, contract.qty_decimals),
                "T": event_ms - rng.randint(0, 3),
            },
        }
        frame = {"stream": STREAM, "data": payload}
        frames.append(json.dumps(frame, separators=(",", ":")).encode())
    return frames


def _noop(_event: object) -> None:
    """Our sink: stands for handing the event on, at no cost."""


def time_ours(frames: Sequence[bytes | str]) -> float:
    """Seconds to normalize every frame and hand each event to a no-op sink."""
    normalize, sink = normalize_usdm, _noop
    start = time.perf_counter()
    for frame in frames:
        for event in normalize(frame):
            sink(event)
    return time.perf_counter() - start


class CryptofeedPath:
    """cryptofeed's BinanceFutures, built offline, driven through its own message handler."""

    def __init__(self) -> None:
        from cryptofeed.defines import BINANCE_FUTURES, LIQUIDATIONS
        from cryptofeed.exchanges import BinanceFutures
        from cryptofeed.symbols import Symbols

        info = {"symbols": [_exchange_info_entry(c) for c in CONTRACTS]}
        normalized, extra = BinanceFutures._parse_symbol_data(info)
        Symbols.set(BINANCE_FUTURES, normalized, extra)
        self.kept: list[Any] = []
        self.keep = False

        async def callback(liquidation: Any, _receipt: float) -> None:
            if self.keep:
                self.kept.append(liquidation)

        self.feed = BinanceFutures(
            symbols=[n for n in normalized if not n.endswith("-PINDEX")],
            channels=[LIQUIDATIONS],
            callbacks={LIQUIDATIONS: callback},
        )

    def run(self, frames: Sequence[bytes | str]) -> float:
        """Seconds for the handler to process every frame (callback does nothing)."""
        handler = self.feed.message_handler

        async def drive() -> float:
            start = time.perf_counter()
            for frame in frames:
                # The connection handler passes time.time(); a constant keeps the clock out.
                await handler(frame, None, 0.0)
            return time.perf_counter() - start

        return asyncio.run(drive())

    def collect(self, frames: Sequence[bytes | str]) -> list[Any]:
        """The Liquidation objects cryptofeed emits for ``frames`` (untimed)."""
        self.kept, self.keep = [], True
        try:
            self.run(frames)
        finally:
            self.keep = False
        return self.kept


def _exchange_info_entry(contract: Contract) -> dict[str, Any]:
    """The exchangeInfo fields cryptofeed's ``_parse_symbol_data`` reads."""
    return {
        "symbol": contract.symbol,
        "pair": contract.symbol.partition("_")[0],
        "contractType": "CURRENT_QUARTER" if contract.dated else "PERPETUAL",
        "status": "TRADING",
        "baseAsset": contract.base,
        "quoteAsset": contract.quote,
        "filters": [
            {"filterType": "PRICE_FILTER", "tickSize": _fmt(10.0**-contract.price_decimals, 8)}
        ],
    }


def machine_facts() -> list[tuple[str, str]]:
    model = "unknown"
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    versions = []
    for dist in ("purpleflea", "msgspec", "cryptofeed", "yapic.json"):
        try:
            versions.append(f"{dist} {metadata.version(dist)}")
        except metadata.PackageNotFoundError:
            versions.append(f"{dist} (not installed)")
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return [
        ("CPU", model),
        ("cores", f"{os.cpu_count()} ({usable} usable)"),
        ("load avg", load),
        ("Python", f"{platform.python_implementation()} {platform.python_version()}"),
        ("packages", ", ".join(versions)),
    ]


def check_same_liquidations(frames: Sequence[bytes], cryptofeed: CryptofeedPath) -> str:
    """Both paths emit one liquidation per frame; ours flips cryptofeed's order side."""
    ours = [event for frame in frames for event in normalize_usdm(frame)]
    theirs = cryptofeed.collect([frame.decode() for frame in frames])
    if len(ours) != len(theirs):
        raise SystemExit(f"liquidation counts differ: ours {len(ours)}, cryptofeed {len(theirs)}")
    flipped = {"long": "sell", "short": "buy"}
    for mine, other in zip(ours, theirs, strict=True):
        if flipped[mine.side] != other.side or mine.symbol != other.raw["o"]["s"]:
            raise SystemExit(f"paths disagree on a frame: ours {mine!r}, cryptofeed {other!r}")
    example = next(i for i, event in enumerate(ours) if event.side == "long")
    mine, other = ours[example], theirs[example]
    return (
        f"{len(ours)} liquidations from each path. Semantics differ: cryptofeed reports the "
        f"forced ORDER (side={other.side}, qty=o.q {other.quantity}, price=o.p {other.price}); "
        f"ours the liquidated POSITION (side={mine.side}, qty=o.z {mine.quantity}, "
        f"price=o.ap {mine.price})."
    )


def profile_ours(frames: Sequence[bytes]) -> None:
    """Where our path spends its time (cProfile inflates small calls; read it as shares)."""
    import cProfile
    import pstats

    profiler = cProfile.Profile()
    profiler.runcall(time_ours, frames)
    pstats.Stats(profiler).sort_stats("tottime").print_stats(15)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=200_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--seed", type=int, default=2025)
    parser.add_argument(
        "--profile", action="store_true", help="cProfile our path instead of benchmarking"
    )
    args = parser.parse_args()

    frames = make_frames(args.frames, args.seed)
    if args.profile:
        profile_ours(frames)
        return
    texts = [frame.decode() for frame in frames]
    mean_len = sum(map(len, frames)) / len(frames)
    for name, value in machine_facts():
        print(f"{name:9} {value}")
    print(
        f"frames    {len(frames):,} ({STREAM}, seed {args.seed}, mean {mean_len:.0f} B, "
        f"{len(CONTRACTS)} symbols); best of {args.repeats}"
    )

    try:
        cryptofeed: CryptofeedPath | None = CryptofeedPath()
    except ImportError as exc:
        cryptofeed = None
        print(f"\ncryptofeed comparison SKIPPED: cannot import it ({exc}).")
        print("Install it in the bench venv: .bench-venv/bin/pip install cryptofeed")
    else:
        print(check_same_liquidations(frames, cryptofeed))

    names = ["purpleflea normalize_usdm, bytes", "purpleflea normalize_usdm, str"]
    runs: list[Callable[[], float]] = [
        lambda: time_ours(frames),
        lambda: time_ours(texts),
    ]
    if cryptofeed is not None:
        feed = cryptofeed
        names += ["cryptofeed BinanceFutures, str", "cryptofeed BinanceFutures, bytes"]
        runs += [lambda: feed.run(texts), lambda: feed.run(frames)]
    # Interleave the paths so a noisy neighbour on a shared machine hits them alike.
    best = [math.inf] * len(runs)
    for _ in range(args.repeats):
        for i, run in enumerate(runs):
            gc.collect()
            best[i] = min(best[i], run())
    rates = [len(frames) / seconds for seconds in best]

    print(f"\n{'path':34} {'msgs/s':>12} {'us/msg':>8}")
    for name, rate in zip(names, rates, strict=True):
        print(f"{name:34} {rate:12,.0f} {1e6 / rate:8.2f}")
    if cryptofeed is not None:
        like_for_like = min(rates[0] / rates[3], rates[1] / rates[2])
        print(
            f"\nratio ours/cryptofeed: {rates[0] / rates[3]:.2f}x on bytes, "
            f"{rates[1] / rates[2]:.2f}x on str; "
            f"ours(bytes)/cryptofeed(str) {rates[0] / rates[2]:.2f}x"
        )
        verdict = "meets" if like_for_like >= TARGET_RATIO else "MISSES"
        print(f"goal >= {TARGET_RATIO:.0f}x like for like: {verdict} ({like_for_like:.2f}x)")


if __name__ == "__main__":
    main()
