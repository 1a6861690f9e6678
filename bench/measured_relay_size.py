"""The measured-heatmap relay's message size and cost per market, by sampled positions.

Positions as a live sampler holds them: random 20-byte hex addresses (they do not compress),
one or two positions per account, liquidation prices and notionals with full float precision.
Prints bytes per position, encode and decode+cut times, and the most positions one message
carries under NATS's default 1 MiB max_payload.

    .venv/bin/python bench/measured_relay_size.py
"""

from __future__ import annotations

import random
import secrets
import time

from purpleflea.engine.measured_map import cut
from purpleflea.positions import MeasuredInputs, Position
from purpleflea.server.measured_relay import decode_inputs, encode_inputs

MAX_PAYLOAD = 1024 * 1024
MARK = 90_000.0


def _positions(count: int, rng: random.Random) -> tuple[Position, ...]:
    out: list[Position] = []
    account = "0x" + secrets.token_hex(20)
    for n in range(count):
        if n % 3 != 2:  # about 1.5 positions per account
            account = "0x" + secrets.token_hex(20)
        side = "long" if rng.random() < 0.5 else "short"
        leverage = rng.choice((2.0, 3.0, 5.0, 10.0, 20.0, 25.0, 40.0))
        usd = rng.lognormvariate(9, 2)
        distance = 1 / leverage * rng.uniform(0.6, 1.0)
        liquidation = MARK * (1 - distance if side == "long" else 1 + distance)
        out.append(
            Position(
                account=account,
                exchange="hyperliquid",
                symbol="BTC",
                market="BTC-PERP",
                side="long" if side == "long" else "short",
                size=usd / MARK,
                entry_price=MARK * rng.uniform(0.9, 1.1),
                margin="cross" if rng.random() < 0.8 else "isolated",
                leverage=leverage,
                liquidation_price=liquidation if rng.random() < 0.95 else None,
                notional_usd=usd,
            )
        )
    return tuple(out)


def main() -> None:
    rng = random.Random(17)
    print("positions  bytes  bytes/position  encode ms  decode+cut ms")
    per_position = 0.0
    for count in (1_000, 5_000, 10_000, 20_000, 50_000):
        inputs = MeasuredInputs(
            market="BTC-PERP",
            ts=0,
            mark_price=MARK,
            open_interest_usd=2e9,
            positions=_positions(count, rng),
        )
        start = time.perf_counter()
        data = encode_inputs(inputs)
        encoded = time.perf_counter()
        cut(decode_inputs(data))
        done = time.perf_counter()
        per_position = len(data) / count
        print(
            f"{count:9,}  {len(data):9,}  {per_position:14.1f}  "
            f"{(encoded - start) * 1e3:9.1f}  {(done - encoded) * 1e3:13.1f}"
        )
    print(f"positions under a 1 MiB max_payload: about {MAX_PAYLOAD / per_position:,.0f}")


if __name__ == "__main__":
    main()
