"""Real liquidations of two other venues, for ``bench/cascade_real.py --venues`` (local only).

``0xknxwledge_group-m-finm33150-final/liquidations.parquet`` (shared/data/real, SOURCES.md 5b):
columns ``timestamp, venue, coin, side, size_usd, price``, UTC. Two venues, each a set of
per-coin REST pages (a continuous record of a coin from its first row to its last, not a
recorder that stops and starts; the windows differ per coin):

- **OKX** (``/api/v5/public/liquidation-orders``, SWAP, ``state=filled``), 5,816 orders,
  2026-03-04 11:13 -> 03-05 11:18. ``side`` is OKX's **order** side (a sell closes a long);
  ``price`` is ``bkPx``; ``size_usd`` was written as ``sz x bkPx`` with ``sz`` in **contracts**,
  so the contracts are ``size_usd / price`` and the notional ``contracts x ctVal x bkPx``
  (:data:`OKX_SWAPS`, sized by the package's own :func:`~purpleflea.venues._units.from_contracts`).
- **Hyperliquid** (0xArchive ``/v1/hyperliquid/liquidations/{coin}``, first pages only),
  2,243 rows, 2025-05-25 14:36 -> 06-05 16:18; ``size_usd`` = price x size (USD already).
  ``side`` is ``S`` on every row and its meaning is undocumented: the rows are read with side
  :data:`UNKNOWN`, and only what holds whichever side each row was is measured from them
  (:func:`heavy_pooled`, :func:`alert_possible`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import NamedTuple

from cascade_real_waves import Event
from purpleflea.model import Instrument
from purpleflea.venues._units import from_contracts

KNX_LIQUIDATIONS = "0xknxwledge_group-m-finm33150-final/liquidations.parquet"
#: The side of a Hyperliquid row: 0xArchive's ``S`` is on every row, meaning undocumented.
UNKNOWN = "unknown"

#: OKX's USDT-margined swaps in the file: ``ctVal`` coins per contract (linear). BTC 0.01 and
#: ETH 0.1 are OKX's instrument list as recorded in shared/EXCHANGES.md (trap 6) and
#: src/purpleflea/venues/instruments.json; SOL 1 and DOGE 1000 from the same list (issue 20's
#: brief); HYPE 0.1: OKX's notice "OKX to list perpetual futures for HYPE" (2025-02-19,
#: "Face value 0.1", as copied by coincarp.com) and its pre-market notice (2024-12-04, "Face
#: value 0.1 HYPE"), and a recorded ``/public/instruments`` answer in a public test
#: (``"ctVal": "0.1", "ctValCcy": "HYPE"``). Check: with these, every coin's median order is
#: $470-820 (HYPE $532; ctVal 0.01 or 1 would make it $53 or $5.3k).
OKX_SWAPS = {
    coin: Instrument(exchange="okx", symbol=f"{coin}-USDT-SWAP", kind="linear", contract_size=size)
    for coin, size in (("BTC", 0.01), ("ETH", 0.1), ("SOL", 1.0), ("DOGE", 1000.0), ("HYPE", 0.1))
}
VENUES = ("okx", "hyperliquid")


class Liq(NamedTuple):
    """One liquidation as the replay reads it (the fields of ``cascade_real.Row``)."""

    market: str
    side: str
    size_usd: float
    price: float
    ts: int


def load(path: Path, venue: str) -> list[Liq]:
    """``venue``'s rows of the file in time order, in USD and the tracker's market names."""
    if venue not in VENUES:
        raise ValueError(f"venue must be one of {VENUES}, got {venue!r}")
    import pyarrow.parquet as pq

    out: list[Liq] = []
    for rec in pq.read_table(path).to_pylist():
        if rec["venue"] != venue:
            continue
        ts = int(rec["timestamp"].timestamp() * 1000)
        coin, price = rec["coin"], float(rec["price"])
        if venue == "okx":
            contracts = float(rec["size_usd"]) / price  # the file's size_usd is sz x bkPx
            usd = from_contracts("okx", contracts, price, OKX_SWAPS[coin]).size_usd
            if usd is None:
                raise ValueError(f"{path}: OKX {coin} row at {ts} has no USD size")
            side = {"sell": "long", "buy": "short"}[rec["side"]]  # the order side
        else:
            usd, side = float(rec["size_usd"]), UNKNOWN
        out.append(Liq(f"{coin}-PERP", side, usd, price, ts))
    out.sort(key=lambda r: r.ts)
    return out


def windows(rows: Iterable[Event]) -> dict[str, tuple[int, int]]:
    """Each market's first and last timestamp: the span its page covers."""
    out: dict[str, tuple[int, int]] = {}
    for r in rows:
        first, last = out.get(r.market, (r.ts, r.ts))
        out[r.market] = (min(first, r.ts), max(last, r.ts))
    return out


def heavy_pooled(rows: Iterable[Event], threshold: float, min_events: int) -> dict[str, list[int]]:
    """Per market, its calendar minutes (ms // 60,000) that are heavy with both sides pooled
    (>= threshold in >= min_events events). One side's minute holds at most the pooled minute's
    notional and events, so every minute heavy on some side is among them, whatever the sides."""
    usd: dict[tuple[str, int], float] = {}
    count: dict[tuple[str, int], int] = {}
    for r in rows:
        key = (r.market, r.ts // 60_000)
        usd[key] = usd.get(key, 0.0) + r.size_usd
        count[key] = count.get(key, 0) + 1
    out: dict[str, list[int]] = {market: [] for market, _ in usd}
    for (market, minute), total in sorted(usd.items()):
        if total >= threshold and count[(market, minute)] >= min_events:
            out[market].append(minute)
    return out


def calm_spans(window: tuple[int, int], busy: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    """``window`` less every ``busy`` span: the time a market was observed and calm."""
    out: list[tuple[int, int]] = []
    start, end = window
    for lo, hi in sorted(busy):
        if lo > start:
            out.append((start, min(lo, end)))
        start = max(start, hi)
        if start >= end:
            break
    if start < end:
        out.append((start, end))
    return [(lo, hi) for lo, hi in out if hi > lo]


def overlapping(spans: Iterable[tuple[int, int]], calm: Sequence[tuple[int, int]]) -> int:
    """How many of ``spans`` (inclusive) touch some ``calm`` span."""
    return sum(any(lo <= c_hi and c_lo <= hi for c_lo, c_hi in calm) for lo, hi in spans)


def alert_possible(
    rows: Sequence[Event], min_usd: float, window_ms: int = 90_000
) -> dict[str, list[tuple[int, int]]]:
    """Per market, the spans in which the engine could start an alert on some side: where the
    trailing ``window_ms`` of both sides pooled holds >= ``min_usd``. The engine starts one only
    with its side's window (18 buckets of 5 s, never more than 90 s back) at ``min_alert_usd``,
    and one side's window never holds more than both sides' trailing 90 s; outside these spans
    no alert can start, whichever side each row was. Spans run from the first event at the
    floor to the last one still counting."""
    by_market: dict[str, list[Event]] = {}
    for r in rows:
        by_market.setdefault(r.market, []).append(r)
    out: dict[str, list[tuple[int, int]]] = {}
    for market, unsorted in by_market.items():
        events = sorted(unsorted, key=lambda r: r.ts)
        spans: list[tuple[int, int]] = []
        total, first = 0.0, 0
        for r in events:
            total += r.size_usd
            while events[first].ts <= r.ts - window_ms:
                total -= events[first].size_usd
                first += 1
            if total >= min_usd:
                if spans and r.ts - spans[-1][1] <= window_ms:
                    spans[-1] = (spans[-1][0], r.ts)
                else:
                    spans.append((r.ts, r.ts))
        out[market] = spans
    return out


def burst_moves(
    rows: Iterable[Event], gap_ms: int = 60_000, min_events: int = 5
) -> dict[tuple[str, str], tuple[int, int]]:
    """Per market and side label, its bursts (>= min_events rows, no gap over gap_ms) whose
    price rose / fell by more than 0.01 % from the first row to the last. Forced buys (shorts
    liquidated) mostly lift the price and forced sells lower it, so a side label that means one
    side shows one direction far more often than the other."""
    series: dict[tuple[str, str], list[list[Event]]] = {}
    for r in sorted(rows, key=lambda r: r.ts):
        bursts = series.setdefault((r.market, r.side), [])
        if not bursts or r.ts - bursts[-1][-1].ts > gap_ms:
            bursts.append([])
        bursts[-1].append(r)
    out: dict[tuple[str, str], tuple[int, int]] = {}
    for key, bursts in series.items():
        up = down = 0
        for b in bursts:
            if len(b) < min_events:
                continue
            move = (b[-1].price - b[0].price) / b[0].price
            up += move > 1e-4
            down += move < -1e-4
        out[key] = (up, down)
    return out
