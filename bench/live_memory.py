"""Live-ingest memory: ``purpleflea serve --source live`` following fake venues for a long run.

Run (from the repository root; niced, the machine is shared)::

    nice -n 10 .venv/bin/python bench/live_memory.py                  # 25 minutes
    nice -n 10 .venv/bin/python bench/live_memory.py --minutes 3      # a quick look
    # ten times the rate, a venue's gateway restarting every minute
    nice -n 10 .venv/bin/python bench/live_memory.py --minutes 15 --rate 30 \
        --burst-every 60 --burst 300 --outage-every 60
    # days in seconds: a Deribit expiry every 20 s, the heatmap retiring after 72 s
    nice -n 10 .venv/bin/python bench/live_memory.py --minutes 10 --expire-every 20 \
        --deribit-poll-s 5 --retire-after-h 0.02
    # where the server's Python heap grew (slower: every allocation traced)
    nice -n 10 .venv/bin/python bench/live_memory.py --minutes 12 --tracemalloc

The server is the real ``purpleflea serve --source live`` command (SQLite store in a fresh
data folder) in its own process. Its live ingest is pointed, by connection name, at loopback
fakes of every connection ``purpleflea.ingest.feeds.URLS`` lists (``tests/fakes/exchanges.py``:
each venue's path, subscribe, pings, acks, snapshots, liveness pushes and gzip), its open
interest pollers at a loopback REST fake answering every venue's endpoint in its shape
(Hyperliquid's at ``tests/fakes/hyperliquid.py``), and its catalog fetches at the same REST
fake, which answers BitMEX's, Gate's and dYdX's (the endpoints their open interest shares)
and 404 for the others, which keep the bundled ``instruments.json`` as on a machine whose
fetches fail. Nothing else of the command is changed (``--deribit-poll-s`` and
``--retire-after-h`` change the poll interval and the heatmap's retirement, for a run that
compresses days).

The fakes publish liquidations in each venue's frame shape (checked against its normalizer
before the run): ``--rate`` a second over all connections (Poisson), on every symbol of the
bundled catalog (Binance USD-M and Bitget, which need no catalog, on the simulator's 275
coins), and every ``--burst-every`` seconds a burst of ``--burst`` liquidations of one market
in 10 s. ``--ws`` WebSocket and ``--sse`` SSE clients read every event and alert.

Every ``--every`` seconds a table row gives the server's RSS, open descriptors, threads and
asyncio tasks, and the size of every container the server's objects hold (found by walking
them from the built server: dedupe windows, per-market state, catalogs, per-client state),
plus the Python object counts by type. The end gives peak RSS, the RSS slope (MB an hour) over
the second half, and every container or type that grew over the second half. Results:
bench/results/live_memory.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime
import functools
import gc
import json
import math
import os
import platform
import random
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

_HERE = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(_HERE))
sys.path.insert(0, str(_HERE / "bench"))

# -- the server child ---------------------------------------------------------------------


def _containers(
    root: object,
    root_name: str,
    out: dict[str, int],
    max_depth: int = 6,
    seen: set[int] | None = None,
) -> None:
    """Sizes of the containers reachable from ``root`` through purpleflea objects' attributes;
    the values of a dict of purpleflea objects are summed under ``path[*]``."""
    seen = set() if seen is None else seen

    def own(obj: object) -> bool:
        return type(obj).__module__.startswith("purpleflea")

    def attrs(obj: object) -> Iterator[tuple[str, object]]:
        values = getattr(obj, "__dict__", None)
        if isinstance(values, dict):
            yield from list(values.items())
        for klass in type(obj).__mro__:
            for name in getattr(klass, "__slots__", ()):
                if hasattr(obj, name):
                    yield name, getattr(obj, name)

    def walk(obj: object, path: str, depth: int) -> None:
        if id(obj) in seen or depth > max_depth:
            return
        seen.add(id(obj))
        for name, value in attrs(obj):
            where = f"{path}.{name}"
            visit(value, where, depth)

    def visit(value: object, where: str, depth: int) -> None:
        if isinstance(value, (dict, list, set, frozenset, tuple)) or hasattr(value, "maxlen"):
            try:
                size = len(value)  # type: ignore[arg-type]
            except TypeError:
                return
            if id(value) in seen:
                return
            seen.add(id(value))
            out[where] = out.get(where, 0) + size
            items = list(value.values()) if isinstance(value, dict) else list(value)
            owned = [v for v in items[:5000] if own(v)]
            for item in owned:
                walk(item, f"{where}[*]", depth + 1)
            # Containers held directly (a dict of sets, of deques): their total size.
            for item in items[:5000]:
                if isinstance(item, (dict, list, set, tuple)) or hasattr(item, "maxlen"):
                    with contextlib.suppress(TypeError):
                        key = f"{where}[*]<len>"
                        out[key] = out.get(key, 0) + len(item)
        elif own(value) and not isinstance(value, type):
            walk(value, where, depth + 1)
        elif callable(value) and own(getattr(value, "__self__", None)):
            walk(value.__self__, where + "<self>", depth + 1)

    walk(root, root_name, 0)


def _task_locals(out: dict[str, int], seen: set[int]) -> None:
    """Containers held in the local variables of every task's coroutine chain (a feed's
    connection state, a stream's client state), summed by coroutine and variable name, and the
    purpleflea objects there walked as :func:`_containers` does."""
    for task in asyncio.all_tasks():
        coro: Any = task.get_coro()
        depth = 0
        while coro is not None and depth < 12:
            frame = getattr(coro, "cr_frame", None) or getattr(coro, "ag_frame", None)
            if frame is None:
                break
            name = getattr(coro, "__qualname__", type(coro).__name__)
            for local, value in list(frame.f_locals.items()):
                where = f"task:{name}.{local}"
                if id(value) in seen:
                    continue
                if isinstance(value, (dict, list, set, tuple)) or hasattr(value, "maxlen"):
                    seen.add(id(value))
                    with contextlib.suppress(TypeError):
                        out[where] = out.get(where, 0) + len(value)
                elif type(value).__module__.startswith("purpleflea") and local != "self":
                    found: dict[str, int] = {}
                    with contextlib.suppress(Exception):
                        _containers(value, where, found, max_depth=3, seen=seen)
                    for key, size in found.items():
                        out[key] = out.get(key, 0) + size
            coro = getattr(coro, "cr_await", None) or getattr(coro, "ag_await", None)
            depth += 1


def _type_counts() -> dict[str, int]:
    counts: Counter[str] = Counter()
    for obj in gc.get_objects():
        counts[type(obj).__qualname__] += 1
    return dict(counts.most_common(60))


def _heap_accounts() -> dict[str, int]:
    """Where the process's heap is, in bytes, beyond what Python objects hold: SQLite's own
    allocations (its page caches), and glibc malloc's arenas in use and free (free but held:
    fragmentation), so growth in RSS can be told from growth of objects."""
    import _sqlite3
    import ctypes

    accounts: dict[str, int] = {"py_blocks": sys.getallocatedblocks()}
    with contextlib.suppress(OSError, AttributeError):
        used = ctypes.CDLL(_sqlite3.__file__).sqlite3_memory_used
        used.restype = ctypes.c_int64
        accounts["sqlite"] = int(used())

    class MallInfo2(ctypes.Structure):
        _fields_ = [
            (name, ctypes.c_size_t)
            for name in [
                "arena",
                "ordblks",
                "smblks",
                "hblks",
                "hblkhd",
                "usmblks",
                "fsmblks",
                "uordblks",
                "fordblks",
                "keepcost",
            ]
        ]

    with contextlib.suppress(OSError, AttributeError):
        mallinfo2 = ctypes.CDLL("libc.so.6").mallinfo2
        mallinfo2.restype = MallInfo2
        info = mallinfo2()
        # arena: sbrk'd and the threads' arenas; hblkhd: mmap'd blocks; uordblks in use,
        # fordblks free in the arenas (held by the process, not returned).
        for name in ("arena", "hblkhd", "uordblks", "fordblks"):
            accounts[f"malloc_{name}"] = int(getattr(info, name))
    return accounts


async def _probe(
    roots: dict[str, object], path: Path, every: float, snapshot_every: float = 0.0
) -> None:
    import tracemalloc

    baseline: tracemalloc.Snapshot | None = None
    samples = 0
    started = time.monotonic()
    dumped = 0
    while True:
        samples += 1
        traced: list[str] = []
        accounts = _heap_accounts()
        if tracemalloc.is_tracing():
            now = tracemalloc.take_snapshot()
            accounts["traced"] = tracemalloc.get_traced_memory()[0]
            if baseline is None or samples == 3:  # the warmed-up heap is the baseline
                baseline = now
            traced = [str(stat) for stat in now.compare_to(baseline, "lineno")[:25]]
            minutes = (time.monotonic() - started) / 60
            if snapshot_every and minutes >= dumped * snapshot_every:
                # Whole snapshots, to compare any two times afterwards by site.
                now.dump(f"{path}.{round(minutes):03d}min.snapshot")
                dumped += 1
        found: dict[str, int] = {}
        seen: set[int] = set()  # each container counted once, under the first path found
        for name, root in roots.items():
            with contextlib.suppress(Exception):
                _containers(root, name, found, seen=seen)
        with contextlib.suppress(Exception):
            _task_locals(found, seen)
        sample = {
            "t": time.time(),
            "tasks": len(asyncio.all_tasks()),
            "containers": {k: v for k, v in found.items() if v >= 2},
            "types": _type_counts(),
            "traced": traced,
            "accounts": accounts,
        }
        with path.open("a") as out:
            out.write(json.dumps(sample) + "\n")
        await asyncio.sleep(every)


def child(config_path: Path, argv: list[str]) -> int:
    """The server: ``purpleflea serve`` with live ingest's endpoints pointed at the fakes."""
    from purpleflea.cli import main
    from purpleflea.ingest import live
    from purpleflea.ingest.catalog import SOURCES
    from purpleflea.ingest.pollers import POLL_SOURCES
    from purpleflea.server import app

    config = json.loads(config_path.read_text())
    if config["tracemalloc"]:
        import tracemalloc

        tracemalloc.start(config.get("trace_frames", 1))
    rest, hyperliquid = config["rest"], config["hyperliquid"]

    def moved(url: str) -> str:
        parts = urlsplit(url)
        return rest + parts.path + (f"?{parts.query}" if parts.query else "")

    polls = []
    for source in POLL_SOURCES:
        if source.exchange == "hyperliquid":
            polls.append(replace(source, urls=(hyperliquid,)))
            continue
        per_symbol = source.per_symbol
        if per_symbol is not None:
            per_symbol = replace(per_symbol, url=moved(per_symbol.url))
        polls.append(
            replace(source, urls=tuple(moved(u) for u in source.urls), per_symbol=per_symbol)
        )
        if source.exchange == "deribit" and config["deribit_poll_s"]:
            polls[-1] = replace(polls[-1], interval=config["deribit_poll_s"])
    if config["retire_after_h"]:
        # Days in minutes: the heatmap's retirement as soon as the fake's expiries come.
        from purpleflea.engine import heatmap

        if "retire_after_h" in heatmap.HeatmapConfig.__struct_fields__:
            model_init = heatmap.HeatmapModel.__init__

            def fast_retire(self: Any, model_config: Any = None) -> None:
                model_config = model_config or heatmap.HeatmapConfig(
                    retire_after_h=config["retire_after_h"]
                )
                model_init(self, model_config)

            heatmap.HeatmapModel.__init__ = fast_retire  # type: ignore[method-assign]
    catalogs = tuple(replace(source, url=moved(source.url)) for source in SOURCES)
    built: dict[str, object] = {}
    build_server = app.build_server

    def capture(*args: Any, **kwargs: Any) -> Any:
        server = build_server(*args, **kwargs)
        built["server"] = server
        return server

    app.build_server = capture  # type: ignore[assignment]
    real = live.LiveIngest

    class Probed(real):  # type: ignore[misc, valid-type]
        async def start(self) -> None:
            await super().start()
            roots = {"server": built.get("server"), "ingest": self}
            probe = _probe(
                roots, Path(config["probe"]), config["every"], config.get("snapshot_every", 0.0)
            )
            task = asyncio.create_task(probe)
            self._tasks.append(task)

    live.LiveIngest = functools.partial(  # type: ignore[misc]
        Probed,
        urls=config["urls"],
        catalog_sources=catalogs,
        poll_sources=tuple(polls),
    )
    return main(argv)


# -- the fakes' liquidations ---------------------------------------------------------------

Frame = Callable[[str, float, float, bool, int, int], str]


def _binance(sym: str, price: float, qty: float, sell: bool, ts: int, n: int) -> str:
    order = {
        "s": sym,
        "S": "SELL" if sell else "BUY",
        "o": "LIMIT",
        "f": "IOC",
        "q": f"{qty:g}",
        "p": f"{price:g}",
        "ap": f"{price:g}",
        "X": "FILLED",
        "l": f"{qty:g}",
        "z": f"{qty:g}",
        "T": ts,
    }
    return json.dumps({"e": "forceOrder", "E": ts + 1, "o": order})


def _bybit(sym: str, price: float, qty: float, sell: bool, ts: int, n: int) -> str:
    row = {"T": ts, "s": sym, "S": "Sell" if sell else "Buy", "v": f"{qty:g}", "p": f"{price:g}"}
    return json.dumps(
        {"topic": f"allLiquidation.{sym}", "type": "snapshot", "ts": ts + 1, "data": [row]}
    )


def _okx(sym: str, price: float, qty: float, sell: bool, ts: int, n: int) -> str:
    detail = {
        "bkLoss": "0",
        "bkPx": f"{price:g}",
        "ccy": "",
        "posSide": "net",
        "side": "sell" if sell else "buy",
        "sz": str(max(1, round(qty))),
        "ts": str(ts),
    }
    item = {"details": [detail], "instId": sym, "instType": "SWAP"}
    return json.dumps(
        {"arg": {"channel": "liquidation-orders", "instType": "SWAP"}, "data": [item]}
    )


def _bitmex(sym: str, price: float, qty: float, sell: bool, ts: int, n: int) -> str:
    row = {
        "orderID": str(uuid.UUID(int=n)),
        "symbol": sym,
        "side": "Sell" if sell else "Buy",
        "price": price,
        "leavesQty": max(1, round(qty)),
    }
    return json.dumps({"table": "liquidation", "action": "insert", "data": [row]})


def _deribit(sym: str, price: float, qty: float, sell: bool, ts: int, n: int) -> str:
    trade = {
        "trade_seq": n,
        "trade_id": str(n),
        "timestamp": ts,
        "tick_direction": 3,
        "price": price,
        "liquidation": "T",
        "instrument_name": sym,
        "index_price": price,
        "direction": "sell" if sell else "buy",
        "amount": max(10, round(qty, -1)),
    }
    params = {"channel": f"trades.{sym}.100ms", "data": [trade]}
    return json.dumps({"jsonrpc": "2.0", "method": "subscription", "params": params})


def _dydx(sym: str, price: float, qty: float, sell: bool, ts: int, n: int) -> str:
    created = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts / 1000)) + f".{ts % 1000:03d}Z"
    trade = {
        "id": str(uuid.UUID(int=n)),
        "size": f"{qty:g}",
        "price": f"{price:g}",
        "side": "SELL" if sell else "BUY",
        "createdAt": created,
        "type": "LIQUIDATED",
    }
    return json.dumps(
        {
            "type": "channel_data",
            "connection_id": "bench",
            "message_id": n,
            "id": sym,
            "channel": "v4_trades",
            "version": "1.1.0",
            "contents": {"trades": [trade]},
        }
    )


def _kraken(sym: str, price: float, qty: float, sell: bool, ts: int, n: int) -> str:
    return json.dumps(
        {
            "feed": "trade",
            "product_id": sym,
            "uid": str(uuid.UUID(int=n)),
            "side": "sell" if sell else "buy",
            "type": "liquidation",
            "seq": n,
            "time": ts,
            "qty": max(1, round(qty)),
            "price": price,
        }
    )


def _bitget(sym: str, price: float, qty: float, sell: bool, ts: int, n: int) -> str:
    row = {
        "symbol": sym,
        "side": "sell" if sell else "buy",
        "price": f"{price:g}",
        "amount": f"{qty * price:.6f}",
        "ts": str(ts),
    }
    return json.dumps(
        {
            "data": [row],
            "arg": {"instType": "usdt-futures", "topic": "liquidation"},
            "action": "update",
            "ts": ts,
        }
    )


def _gate(sym: str, price: float, qty: float, sell: bool, ts: int, n: int) -> str:
    size = max(1, round(qty))
    result = {"contract": sym, "price": f"{price:g}", "time": ts, "size": -size if sell else size}
    return json.dumps(
        {
            "time": ts // 1000,
            "time_ms": ts,
            "channel": "futures.public_liquidates",
            "event": "update",
            "result": result,
        }
    )


def _htx(sym: str, price: float, qty: float, sell: bool, ts: int, n: int) -> str:
    volume = max(1, round(qty))
    row = {
        "symbol": sym.split("-", maxsplit=1)[0],
        "contract_code": sym,
        "direction": "sell" if sell else "buy",
        "offset": "close",
        "volume": volume,
        "price": price,
        "created_at": ts,
    }
    return json.dumps(
        {"op": "notify", "topic": f"public.{sym}.liquidation_orders", "ts": ts + 1, "data": [row]}
    )


FRAMES: dict[str, Frame] = {
    "binance_usdm": _binance,
    "binance_coinm": _binance,
    "bybit_linear": _bybit,
    "bybit_inverse": _bybit,
    "okx": _okx,
    "bitmex": _bitmex,
    "deribit": _deribit,
    "dydx_v4": _dydx,
    "kraken_futures": _kraken,
    "bitget": _bitget,
    "gate_usdt": _gate,
    "htx_linear": _htx,
    "htx_coin": _htx,
}
#: Share of the liquidations each connection carries (roughly the venues' real weights).
WEIGHTS = {
    "binance_usdm": 30,
    "binance_coinm": 3,
    "bybit_linear": 20,
    "bybit_inverse": 2,
    "okx": 10,
    "bitmex": 2,
    "deribit": 3,
    "dydx_v4": 3,
    "kraken_futures": 3,
    "bitget": 10,
    "gate_usdt": 8,
    "htx_linear": 4,
    "htx_coin": 2,
}


#: Seconds between the fakes' liveness pushes and their own pings: the venues' documented or
#: recorded cadences (docs/live.md), where the test fakes use 0.05-0.2 s.
LIVENESS_S = {"bybit_inverse": 0.1, "htx": 60.0}
PING_S = {"deribit": 30.0, "dydx": 1.0, "kraken": 5.0, "htx": 5.0}

#: The instrument kind each connection carries where a venue splits them over connections.
PART_KIND = {
    "bybit_linear": "linear",
    "bybit_inverse": "inverse",
    "htx_linear": "linear",
    "htx_coin": "inverse",
}


def _prices() -> dict[str, float]:
    from purpleflea.sim.markets import TICKERS

    return {base: price for base, price, _ in TICKERS}


def _base_of(market: str) -> str:
    return market.rsplit("-", 1)[0]


def checked_symbols() -> dict[str, list[tuple[str, float]]]:
    """(symbol, price) each connection liquidates: the bundled catalog's symbols of its part,
    the simulator's 275 coins on venues whose feeds need no catalog; only symbols whose frame
    the venue's own normalizer reads as a sized event."""
    from purpleflea.ingest.catalog import Catalogs
    from purpleflea.ingest.feeds import build_feeds
    from purpleflea.sim.markets import universe

    prices = _prices()
    catalogs = Catalogs()
    specs = {spec.name: spec for spec in build_feeds(catalogs)}
    candidates: dict[str, set[str]] = {name: set() for name in FRAMES}
    for exchange in (
        "okx",
        "gate",
        "htx",
        "kraken_futures",
        "bitmex",
        "bybit",
        "deribit",
        "dydx_v4",
    ):
        for symbol, instrument in catalogs.get(exchange).items():
            for name in FRAMES:
                kind = PART_KIND.get(name)
                if specs[name].exchange == exchange and kind in (None, instrument.kind):
                    candidates[name].add(symbol)
    for spec in universe(275):
        for listing in spec.listings:
            if listing.exchange in ("binance_usdm", "bitget"):
                candidates[listing.exchange].add(listing.symbol)
    candidates["binance_coinm"] |= {"BTCUSD_PERP", "ETHUSD_PERP", "SOLUSD_PERP", "XRPUSD_PERP"}
    rank = {base: i for i, base in enumerate(prices)}
    found: dict[str, list[tuple[str, float]]] = {}
    n = 1
    for name, symbols in candidates.items():
        spec = specs[name]
        read = []
        for symbol in symbols:
            n += 1
            events = spec.normalize(FRAMES[name](symbol, 100.0, 5.0, True, 1_700_000_000_000, n))
            if not events or events[0].size_usd is None:
                continue
            base = _base_of(events[0].market)
            read.append((rank.get(base, len(rank)), symbol, prices.get(base, 1.0)))
        # Majors first: the publisher liquidates the first symbols most.
        found[name] = [(symbol, price) for _, symbol, price in sorted(read)]
    return found


# -- the REST fake's open interest ---------------------------------------------------------


class Markets:
    """A price and open interest per (exchange, symbol), wandering a little each poll."""

    def __init__(
        self,
        rng: random.Random,
        symbols: dict[str, list[tuple[str, float]]],
        expire_every: float = 0.0,
    ) -> None:
        #: Seconds between Deribit's expiries (0: its perpetuals only): a BTC and an ETH
        #: future listed each period, each listed for three periods, then gone.
        self.expire_every = expire_every
        self.started = time.monotonic()
        self.rng = rng
        self.state: dict[tuple[str, str], list[float]] = {}
        self.symbols = symbols

    def of(self, key: str, symbol: str, price: float) -> tuple[float, float]:
        state = self.state.setdefault((key, symbol), [price, 1_000_000 / max(price, 1e-9)])
        state[0] *= math.exp(self.rng.gauss(0, 0.002))
        state[1] *= math.exp(self.rng.gauss(0, 0.01))
        return state[0], state[1]

    def rows(self, *names: str) -> list[tuple[str, float, float]]:
        return [
            (symbol, *self.of(name, symbol, price))
            for name in names
            for symbol, price in self.symbols.get(name, [])
        ]

    def dated(self) -> list[tuple[str, float, float]]:
        """Deribit's dated futures listed now (``BTC-8JAN27``), as :meth:`rows` gives them."""
        if not self.expire_every:
            return []
        period = int((time.monotonic() - self.started) / self.expire_every)
        found = []
        for day in range(period, period + 3):
            when = datetime.date(2027, 1, 1) + datetime.timedelta(days=day)
            month = when.strftime("%b").upper()
            for coin, price in (("BTC", 95_000.0), ("ETH", 3_300.0)):
                symbol = f"{coin}-{when.day}{month}{when:%y}"
                found.append((symbol, *self.of("deribit", symbol, price)))
        return found


def rest_routes(markets: Markets) -> dict[str, Any]:
    from purpleflea.ingest.catalog import Catalogs

    sizes = {s: i.contract_size for s, i in Catalogs().get("gate").items()}

    def body(value: object) -> bytes:
        return json.dumps(value).encode()

    def bybit(category: str) -> bytes:
        name = "bybit_linear" if category == "linear" else "bybit_inverse"
        scale = 1.0 if category == "linear" else None
        rows = [
            {
                "symbol": s,
                "markPrice": f"{p:g}",
                "openInterest": f"{2 * oi * (scale or p):g}",
                "singleOpenInterest": f"{oi * (scale or p):g}",
            }
            for s, p, oi in markets.rows(name)
        ]
        return body({"retCode": 0, "retMsg": "OK", "result": {"category": category, "list": rows}})

    def okx_oi(_: dict[str, str]) -> bytes:
        rows = [
            {"instId": s, "instType": "SWAP", "oiCcy": f"{oi:g}"}
            for s, _p, oi in markets.rows("okx")
        ]
        return body({"code": "0", "msg": "", "data": rows})

    def okx_marks(_: dict[str, str]) -> bytes:
        rows = [
            {"instId": s, "instType": "SWAP", "markPx": f"{p:g}"}
            for s, p, _oi in markets.rows("okx")
        ]
        return body({"code": "0", "msg": "", "data": rows})

    # BitMEX's, Gate's and dYdX's catalogs are read from the same endpoints as their open
    # interest: their rows carry what the catalog parsers read too.
    def bitmex(_: dict[str, str]) -> bytes:
        return body(
            [
                {"symbol": s, "markPrice": p, "openInterest": round(oi * p), "isInverse": True}
                for s, p, oi in markets.rows("bitmex")
            ]
        )

    def dydx(_: dict[str, str]) -> bytes:
        return body(
            {
                "markets": {
                    s: {
                        "ticker": s,
                        "oraclePrice": f"{p:g}",
                        "openInterest": f"{oi:g}",
                        "status": "ACTIVE",
                    }
                    for s, p, oi in markets.rows("dydx_v4")
                }
            }
        )

    def gate(params: dict[str, str]) -> bytes:
        if params.get("offset", "0") != "0":
            return body([])
        return body(
            [
                {
                    "name": s,
                    "mark_price": f"{p:g}",
                    "quanto_multiplier": f"{sizes[s]:g}",
                    "position_size": round(oi / sizes[s]),
                }
                for s, p, oi in markets.rows("gate_usdt")
            ]
        )

    def kraken(_: dict[str, str]) -> bytes:
        rows = [
            {"symbol": s, "markPrice": p, "openInterest": oi * (p if s.startswith("PI_") else 1)}
            for s, p, oi in markets.rows("kraken_futures")
        ]
        return body({"result": "success", "tickers": rows})

    def deribit(params: dict[str, str]) -> bytes:
        currency = params.get("currency", "")
        rows = [
            {"instrument_name": s, "mark_price": p, "open_interest": oi * p}
            for s, p, oi in markets.rows("deribit") + markets.dated()
            if s.startswith(currency)
        ]
        return body({"jsonrpc": "2.0", "result": rows})

    def htx_oi(name: str) -> Callable[[dict[str, str]], bytes]:
        return lambda _: body(
            {
                "status": "ok",
                "data": [
                    {"contract_code": s, "amount": oi, "volume": oi, "value": oi * p}
                    for s, p, oi in markets.rows(name)
                ],
            }
        )

    def htx_ticks(name: str) -> Callable[[dict[str, str]], bytes]:
        return lambda _: body(
            {
                "status": "ok",
                "ticks": [
                    {"contract_code": s, "close": str(p)} for s, p, _oi in markets.rows(name)
                ],
            }
        )

    def binance_marks(_: dict[str, str]) -> bytes:
        return body(
            [{"symbol": s, "markPrice": f"{p:g}"} for s, p, _ in markets.rows("binance_usdm")]
        )

    def binance_oi(params: dict[str, str]) -> bytes:
        symbol = params.get("symbol", "")
        price = dict(markets.symbols.get("binance_usdm", [])).get(symbol, 1.0)
        _, oi = markets.of("binance_usdm", symbol, price)
        return body({"symbol": symbol, "openInterest": f"{oi:g}", "time": int(time.time() * 1000)})

    return {
        "/v5/market/tickers": lambda params: bybit(params.get("category", "linear")),
        "/api/v5/public/open-interest": okx_oi,
        "/api/v5/public/mark-price": okx_marks,
        "/api/v1/instrument/active": bitmex,
        "/v4/perpetualMarkets": dydx,
        "/api/v4/futures/usdt/contracts": gate,
        "/derivatives/api/v3/tickers": kraken,
        "/api/v2/public/get_book_summary_by_currency": deribit,
        "/linear-swap-api/v1/swap_open_interest": htx_oi("htx_linear"),
        "/v2/linear-swap-ex/market/detail/batch_merged": htx_ticks("htx_linear"),
        "/swap-api/v1/swap_open_interest": htx_oi("htx_coin"),
        "/v2/swap-ex/market/detail/batch_merged": htx_ticks("htx_coin"),
        "/fapi/v1/premiumIndex": binance_marks,
        "/fapi/v1/openInterest": binance_oi,
    }


# -- the measuring side --------------------------------------------------------------------


def slope_per_hour(points: list[tuple[float, float]]) -> float:
    n = len(points)
    if n < 2:
        return 0.0
    mean_t = sum(t for t, _ in points) / n
    mean_v = sum(v for _, v in points) / n
    spread = sum((t - mean_t) ** 2 for t, _ in points)
    if spread == 0:
        return 0.0
    return sum((t - mean_t) * (v - mean_v) for t, v in points) / spread * 3600


class Publisher:
    """Liquidations at ``rate`` a second over the connections, with bursts."""

    def __init__(
        self, fakes: dict[str, Any], symbols: dict[str, list[tuple[str, float]]], rng: random.Random
    ) -> None:
        self.fakes, self.symbols, self.rng = fakes, symbols, rng
        self.names = [name for name in FRAMES if symbols.get(name)]
        self.weights = [WEIGHTS[name] for name in self.names]
        self.sent = 0
        self.by_connection: Counter[str] = Counter()

    async def one(self, name: str | None = None, symbol: tuple[str, float] | None = None) -> None:
        rng = self.rng
        name = name or rng.choices(self.names, self.weights)[0]
        listed = self.symbols[name]
        # Heavier on the first (major) symbols, as real liquidations are.
        sym, price = symbol or listed[min(int(rng.expovariate(1 / 8)), len(listed) - 1)]
        self.sent += 1
        qty = rng.lognormvariate(math.log(5_000 / max(price, 1e-9)), 1.5)
        if name in ("bybit_inverse", "deribit", "htx_coin", "kraken_futures", "bitmex"):
            qty = max(qty * price / 10, 1)  # contracts of 1-10 USD
        frame = FRAMES[name](
            sym,
            price * (1 + rng.gauss(0, 0.001)),
            qty,
            rng.random() < 0.55,
            int(time.time() * 1000),
            self.sent + 10_000_000 * os.getpid(),
        )
        await self.fakes[name].broadcast(frame)
        self.by_connection[name] += 1

    async def run(self, rate: float, burst_every: float, burst: int) -> None:
        next_burst = time.monotonic() + burst_every / 2
        while True:
            await asyncio.sleep(self.rng.expovariate(rate))
            await self.one()
            if time.monotonic() >= next_burst:
                next_burst += burst_every
                name = self.rng.choices(self.names, self.weights)[0]
                symbol = self.symbols[name][0]
                for _ in range(burst):
                    await self.one(name, symbol)
                    await asyncio.sleep(10 / burst)


async def outages(fakes: dict[str, Any], rng: random.Random, every: float, log: list[str]) -> None:
    """Every ``every`` seconds one venue's gateway restarts: its connections are dropped and
    new ones refused for 5 s (the reconnect, gap and repair paths)."""
    while True:
        await asyncio.sleep(every)
        name = rng.choice(sorted(fakes))
        log.append(name)
        await fakes[name].outage(5.0)


async def ws_reader(url: str, key: str, counts: list[int], index: int) -> None:
    from websockets.asyncio.client import connect

    headers = {"Authorization": f"Bearer {key}"}
    async with connect(url, additional_headers=headers, max_size=2**22) as ws:
        await ws.send(json.dumps({"op": "subscribe", "channels": ["liquidations", "cascades"]}))
        async for _ in ws:
            counts[index] += 1


async def sse_reader(http: Any, key: str, counts: list[int], index: int) -> None:
    params = {"channels": "liquidations,cascades", "api_key": key}
    async with http.stream("GET", "/v1/stream/sse", params=params, timeout=None) as answer:
        answer.raise_for_status()
        async for line in answer.aiter_lines():
            if line.startswith("data:"):
                counts[index] += 1


def _probe_lines(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


async def run(args: argparse.Namespace) -> None:

    from tests.fakes.exchanges import FakeExchange, dialect_for
    from tests.fakes.hyperliquid import FakeHyperliquid
    from tests.fakes.rest import FakeRest

    from purpleflea.ingest.feeds import URLS
    from serving import until_serving

    rng = random.Random(args.seed)
    symbols = checked_symbols()
    markets = Markets(rng, symbols, args.expire_every)
    hl_markets = {base: (price, 1e6 / price) for base, price in list(_prices().items())[:150]}
    async with contextlib.AsyncExitStack() as stack:
        fakes = {
            name: await stack.enter_async_context(FakeExchange(dialect_for(name))) for name in URLS
        }
        for name, fake in fakes.items():
            # The venues' own cadences (docs/live.md), not the tests' fast ones.
            part = name.split("_")[0]
            if fake.dialect.liveness_every is not None:
                fake.dialect.liveness_every = LIVENESS_S.get(name, LIVENESS_S.get(part, 1.0))
            if fake.dialect.ping_every is not None:
                fake.dialect.ping_every = PING_S[part]
        rest = await stack.enter_async_context(FakeRest(rest_routes(markets)))
        hyperliquid = await stack.enter_async_context(FakeHyperliquid(markets=hl_markets))
        data_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="pf-livemem-")))
        probe = data_dir.parent / f"{data_dir.name}.probe.jsonl"
        config = data_dir.parent / f"{data_dir.name}.config.json"
        config.write_text(
            json.dumps(
                {
                    "urls": {name: fake.url for name, fake in fakes.items()},
                    "rest": rest.base,
                    "hyperliquid": hyperliquid.info_url,
                    "probe": str(probe),
                    "every": args.every,
                    "deribit_poll_s": args.deribit_poll_s,
                    "retire_after_h": args.retire_after_h,
                    "tracemalloc": args.tracemalloc,
                    "trace_frames": args.trace_frames,
                    "snapshot_every": args.snapshot_every,
                }
            )
        )
        clients = args.ws + args.sse
        log = (data_dir.parent / f"{data_dir.name}.server.log").open("w")
        server = subprocess.Popen(
            [
                sys.executable,
                __file__,
                "--child",
                str(config),
                "--",
                "serve",
                "--source",
                "live",
                "--data-dir",
                str(data_dir),
                "--port",
                "0",
                "--streams-per-account",
                str(clients),
                "--stream-opens-per-min",
                str(clients),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            port = await until_serving(Path(log.name), timeout_s=60, process=server)
            await _measure(args, server.pid, port, fakes, symbols, rng, probe, rest)
        finally:
            server.send_signal(signal.SIGINT)
            try:
                server.wait(30)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
            log.close()
            print(f"server log: {log.name}; probe samples: {probe}")


async def _measure(
    args: argparse.Namespace,
    pid: int,
    port: int,
    fakes: dict[str, Any],
    symbols: dict[str, list[tuple[str, float]]],
    rng: random.Random,
    probe: Path,
    rest: Any,
) -> None:
    import httpx

    from procfs import cpu_seconds, memory_mb, status

    url = f"http://127.0.0.1:{port}"
    async with httpx.AsyncClient(base_url=url) as http:
        created = await http.post("/v1/keys", json={"account": "bench", "name": "livemem"})
        created.raise_for_status()
        key = created.json()["key"]
        print(
            f"machine: {platform.machine()}, {os.cpu_count()} cores, Python "
            f"{platform.python_version()}; load {os.getloadavg()[0]:.1f}; server pid {pid}; "
            f"{sum(map(len, symbols.values()))} symbols on {len(symbols)} connections "
            f"({', '.join(f'{k} {len(v)}' for k, v in symbols.items())}); "
            f"RSS before clients {memory_mb(pid):.0f} MB",
            flush=True,
        )
        counts = [0] * (args.ws + args.sse)
        ws_url = f"ws://127.0.0.1:{port}/v1/stream"
        tasks = [asyncio.create_task(ws_reader(ws_url, key, counts, i)) for i in range(args.ws)]
        sse_http = httpx.AsyncClient(base_url=url)
        tasks += [
            asyncio.create_task(sse_reader(sse_http, key, counts, args.ws + i))
            for i in range(args.sse)
        ]
        publisher = Publisher(fakes, symbols, rng)
        tasks.append(asyncio.create_task(publisher.run(args.rate, args.burst_every, args.burst)))
        dropped: list[str] = []
        if args.outage_every:
            tasks.append(asyncio.create_task(outages(fakes, rng, args.outage_every, dropped)))
        started = time.monotonic()
        cpu0 = cpu_seconds(pid)
        print(
            "| min | RSS MB | peak MB | fds | threads | tasks | published | stored | "
            "frames to clients | server CPU s | load |"
        )
        print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        rss: list[tuple[float, float]] = []
        rows: list[dict[str, Any]] = []
        while time.monotonic() - started < args.minutes * 60:
            await asyncio.sleep(args.every)
            elapsed = time.monotonic() - started
            failed = [t for t in tasks if t.done()]
            if failed:
                failed[0].result()
            now = status(pid)
            rss_mb, peak_mb = now["VmRSS"] / 1024, now["VmHWM"] / 1024
            rss.append((elapsed, rss_mb))
            try:
                stored = (await http.get("/v1/health", timeout=30)).json()["last_seq"]
            except httpx.TimeoutException:
                stored = -1
            latest = (_probe_lines(probe) or [{}])[-1]
            row = {
                "t": elapsed,
                "rss": rss_mb,
                "tasks": latest.get("tasks", -1),
                "fds": len(os.listdir(f"/proc/{pid}/fd")),
                "threads": now["Threads"],
                "containers": latest.get("containers", {}),
                "types": latest.get("types", {}),
                "accounts": latest.get("accounts", {}),
            }
            rows.append(row)
            print(
                f"| {elapsed / 60:.1f} | {rss_mb:.0f} | {peak_mb:.0f} "
                f"| {row['fds']} | {row['threads']:.0f} | {row['tasks']} | {publisher.sent:,} "
                f"| {stored:,} | {sum(counts):,} | {cpu_seconds(pid) - cpu0:.0f} "
                f"| {os.getloadavg()[0]:.1f} |",
                flush=True,
            )
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await sse_http.aclose()
        health = (await http.get("/v1/health", timeout=30)).json()
    if dropped:
        print(f"outages ({len(dropped)}): {dict(Counter(dropped))}")
    _report(args, pid, rss, rows, publisher, health, fakes, rest, probe)


def _report(
    args: argparse.Namespace,
    pid: int,
    rss: list[tuple[float, float]],
    rows: list[dict[str, Any]],
    publisher: Publisher,
    health: dict[str, Any],
    fakes: dict[str, Any],
    rest: Any,
    probe: Path,
) -> None:
    from procfs import memory_mb

    peak = memory_mb(pid, "VmHWM")
    half = rss[-1][0] / 2 if rss else 0
    second = [p for p in rss if p[0] >= half]
    print(
        f"\n{args.minutes:g} min, {args.ws} WebSocket + {args.sse} SSE clients, "
        f"{publisher.sent:,} liquidations published ({dict(publisher.by_connection)}): "
        f"RSS {rss[-1][1]:.0f} MB at the end, peak {peak:.0f} MB; slope over the second half "
        f"{slope_per_hour(second):+.1f} MB an hour, over the whole run "
        f"{slope_per_hour(rss):+.1f} MB an hour; load {os.getloadavg()[0]:.1f}"
    )
    later = [r for r in rows if r["t"] >= half]
    if len(later) >= 2:
        first, last = later[0], later[-1]
        for label, field in (("containers", "containers"), ("object types", "types")):
            grew = []
            for name, end in last[field].items():
                points = [(r["t"], r[field].get(name, 0)) for r in later]
                begin = first[field].get(name, 0)
                if end > begin and slope_per_hour(points) > 0:
                    grew.append((end - begin, name, begin, end, slope_per_hour(points)))
            grew.sort(reverse=True)
            print(f"\n{label} that grew over the second half (first 30 by growth):")
            for delta, name, begin, end, slope in grew[:30]:
                print(f"  {name}: {begin:,} -> {end:,} (+{delta:,}; {slope:+,.0f} an hour)")
        print("\nthe heap's accounts, MB (start, second half's start, end):")
        for name in sorted(last.get("accounts", {})):
            values = [r["accounts"].get(name, 0) for r in (rows[0], first, last)]
            shown = [f"{v:,}" if name == "py_blocks" else f"{v / 2**20:,.1f}" for v in values]
            print(f"  {name}: " + " -> ".join(shown))
        print(f"\ntasks: {[r['tasks'] for r in rows]}")
        print(f"fds: {[r['fds'] for r in rows]}")
    traced = (_probe_lines(probe) or [{}])[-1].get("traced")
    if traced:
        print("\nallocation sites that grew since the third sample (tracemalloc):")
        for line in traced:
            print(f"  {line}")
    connections = health.get("ingest", health.get("connections", []))
    print(f"\nhealth ingest: {json.dumps(connections)[:3000]}")
    print(f"fake violations: { {n: f.violations for n, f in fakes.items() if f.violations} }")
    print(f"REST requests: {len(rest.requests)}")


def main(argv: list[str]) -> int:
    if argv and argv[0] == "--child":
        return child(Path(argv[1]), argv[3:])
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=25.0)
    parser.add_argument("--every", type=float, default=30.0)
    parser.add_argument("--rate", type=float, default=3.0, help="liquidations a second, total")
    parser.add_argument("--burst-every", type=float, default=180.0)
    parser.add_argument("--burst", type=int, default=150)
    parser.add_argument("--ws", type=int, default=40)
    parser.add_argument("--sse", type=int, default=10)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--expire-every",
        type=float,
        default=0.0,
        help="seconds between Deribit expiries (a day in fast time; 0: no dated futures)",
    )
    parser.add_argument(
        "--deribit-poll-s", type=float, default=0.0, help="Deribit's poll interval (0: its own)"
    )
    parser.add_argument(
        "--retire-after-h",
        type=float,
        default=0.0,
        help="the heatmap's retire_after_h in the server (0: its default)",
    )
    parser.add_argument(
        "--tracemalloc",
        action="store_true",
        help="trace the server's allocations: the report lists the sites that grew",
    )
    parser.add_argument(
        "--trace-frames",
        type=int,
        default=1,
        help="with --tracemalloc: frames kept a traced allocation (more: whose call grew)",
    )
    parser.add_argument(
        "--snapshot-every",
        type=float,
        default=0.0,
        help="with --tracemalloc: minutes between whole snapshots written beside the probe "
        "samples, to compare two times by site afterwards (0: none)",
    )
    parser.add_argument(
        "--outage-every", type=float, default=0.0, help="seconds between venue outages (0: none)"
    )
    asyncio.run(run(parser.parse_args(argv)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
