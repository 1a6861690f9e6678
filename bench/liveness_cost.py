"""CPU a liveness push costs the connection runner (docs/live.md, "Keeping each connection
alive"): per push, what ``ingest/received_frames.py`` and ``ingest/connection.py`` do with a
frame that carries no liquidation: the contracts reader where there is one (BitMEX: the XBT
price of its quantos), the normalizer (which reads the channel and yields nothing), the
refusal reader (asked of every frame without events) and the liveness reader.

Run (from the repository root)::

    nice -n 10 .venv/bin/python bench/liveness_cost.py

Pushes are the fakes' recorded shapes (tests/fakes/exchanges.py; HTX's gzipped). Prints, per
connection, the median of 7 runs of the CPU microseconds a push (``time.process_time``) and
the CPU share of one core at the channel's rate (the docs' frames a second).
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # the tests' fake exchanges make the pushes, not a copy

from tests.fakes.exchanges import Session, dialect_for  # noqa: E402
from tests.fakes.harness import catalogs_for_tests  # noqa: E402

from purpleflea.ingest import feeds  # noqa: E402

#: Pushes a second of each channel (docs/live.md: Bybit's documented 100 ms, HTX's 60 s; the
#: others undocumented, about one a second when recorded).
RATES = {"bybit_inverse": 10.0, "gate_usdt": 1.0, "htx_linear": 1 / 60, "bitmex": 1.0}
RATES["bitget"] = 1.0
ROUNDS = 20_000


def main() -> None:
    specs = {s.name: s for s in feeds.build_feeds(catalogs_for_tests())}
    print(f"{'connection':<14} {'us/push':>8} {'share of a core':>16}")
    for name, rate in RATES.items():
        spec = specs[name]
        assert spec.liveness is not None
        assert spec.refusal is not None
        dialect, session = dialect_for(name), Session()
        for message in spec.subscribe_messages():
            dialect.handle(message, session)
        push = dialect.liveness_push(session)
        assert push is not None
        frame = dialect.encode(push)
        assert spec.liveness(frame)
        assert spec.normalize(frame) == []
        runs = []
        for _ in range(7):
            start = time.process_time()
            for _ in range(ROUNDS):
                if spec.learn is not None:  # BitMEX: the push's XBT price for its quantos
                    spec.learn(frame)
                spec.normalize(frame)
                spec.refusal(frame)
                spec.liveness(frame)
            runs.append((time.process_time() - start) / ROUNDS * 1e6)
        us = statistics.median(runs)
        print(f"{name:<14} {us:>8.1f} {us * rate / 1e6:>15.6%}")


if __name__ == "__main__":
    main()
