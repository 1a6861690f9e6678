"""CPU per venue event of the pipeline's first step, ``Sequencer.accept`` (the names check of
the fourth attack round runs there: every market, symbol and exchange judged once, every id).

    .venv/bin/python bench/accept_cost.py                  # this checkout's code
    PYTHONPATH=<a git archive copy>/src .venv/bin/python bench/accept_cost.py   # another's

``--events`` venue events over ``--markets`` markets and 6 exchanges are built first; each
round accepts all of them into a fresh ``Sequencer`` (no scorer, buffer large enough) and
times it with ``time.process_time``. Printed: the best round's nanoseconds an event.

Results: bench/results/attack.md ("Venue and imported names").
"""

from __future__ import annotations

import argparse
import time

from purpleflea.model import VenueLiquidation
from purpleflea.server.sequencing import Sequencer

EXCHANGES = ("binance_usdm", "bybit", "okx", "hyperliquid", "gate", "bitget")
T0 = 1_760_000_000_000


def events(count: int, markets: int) -> list[VenueLiquidation]:
    made = []
    for n in range(count):
        coin = f"C{n % markets}"
        exchange = EXCHANGES[n % len(EXCHANGES)]
        made.append(
            VenueLiquidation(
                id=f"{exchange}:{coin}USDT:{n}",
                exchange=exchange,
                symbol=f"{coin}USDT",
                market=f"{coin}-PERP",
                side="long" if n % 2 else "short",
                price=100.0,
                quantity=10.0,
                size_usd=1_000.0,
                ts=T0 + n,
            )
        )
    return made


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--markets", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    made = events(args.events, args.markets)
    best = float("inf")
    for _ in range(args.rounds):
        core = Sequencer(buffer_limit=args.events + 1, batch_limit=args.events + 1)
        started = time.process_time()
        for event in made:
            core.accept(event, event.ts or T0)
        best = min(best, time.process_time() - started)
    print(
        f"Sequencer.accept: {1e9 * best / args.events:.0f} ns an event "
        f"(best of {args.rounds} rounds of {args.events:,} events, {args.markets} markets)"
    )


if __name__ == "__main__":
    main()
