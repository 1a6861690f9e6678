"""CPU one look of ``Connection.follow_catalog`` costs: every minute a connection whose
subscribe is rebuilt from the live catalog (Bybit, Kraken Futures, dYdX) builds it again and
reads its topics against what the session asked for (``Resubscriber.extend``), to subscribe
a contract listed since it connected.

Run (from the repository root)::

    nice -n 10 .venv/bin/python bench/follow_catalog_cost.py [markets ...]

The catalog is ``markets`` made-up linear symbols (default 200, 700, 1500: Bybit's linear
category lists several hundred). Prints, per size, the median of 7 runs of the CPU
milliseconds (``time.process_time``) a look at a catalog that gained nothing.
"""

from __future__ import annotations

import statistics
import sys
import time

from purpleflea.ingest import feeds
from purpleflea.ingest.catalog import Catalogs
from purpleflea.ingest.resubscribe import Resubscriber
from purpleflea.model import Instrument

LOOKS = 200


def per_look_ms(markets: int) -> float:
    catalogs = Catalogs()
    symbols = [f"C{i:04d}USDT" for i in range(markets)]
    rows = {
        s: Instrument(exchange="bybit", symbol=s, kind="linear", contract_size=1.0) for s in symbols
    }
    catalogs.get("bybit").replace(rows)
    spec = next(s for s in feeds.build_feeds(catalogs, ["bybit"]) if s.name == "bybit_linear")
    assert spec.batching is not None
    resubscriber = Resubscriber(spec.batching)
    resubscriber.start(spec.subscribe_messages())
    runs = []
    for _ in range(7):
        started = time.process_time()
        for _ in range(LOOKS):
            topics, _messages = resubscriber.extend(spec.subscribe_messages())
            assert not topics
        runs.append((time.process_time() - started) / LOOKS * 1e3)
    return statistics.median(runs)


def main() -> None:
    sizes = [int(arg) for arg in sys.argv[1:]] or [200, 700, 1500]
    print(f"{'markets':>8} {'ms/look':>8}")
    for markets in sizes:
        print(f"{markets:>8} {per_look_ms(markets):>8.3f}")


if __name__ == "__main__":
    main()
