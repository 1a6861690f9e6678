"""The SDK's cost to decode one streamed event: what a client spends per delivery.

    .venv/bin/python bench/sdk_decode.py

Issue 21's burst (b) sends 20,000 events in one second to 50 clients: one million deliveries,
each decoded by an SDK client. This measures the decode a ``Stream`` runs for every event of a
``batch`` frame (into ``Liquidation`` objects, with the resume cursor), without the socket or
the async iteration around it, so it is a floor on the clients' CPU per delivery: times one
million, the core-seconds the measuring side needs per burst. Both paths: the one-pass batch
decode the SDK uses, and the general frame-by-frame one (single frames, unknown batches).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import msgspec

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.events import stored_event  # noqa: E402

from purpleflea.client.stream import Stream, _frame  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, default=40, help="events per batch frame")
    parser.add_argument("--frames", type=int, default=5_000)
    args = parser.parse_args()
    items = [
        msgspec.json.encode({"type": "liquidation", "data": stored_event(i)})
        for i in range(1, args.batch + 1)
    ]
    batch = b'{"type":"batch","items":[' + b",".join(items) + b"]}"
    text = batch.decode()  # websockets hands a text frame over as str
    stream = Stream.__new__(Stream)  # only the decode path: no client, no socket

    def one_pass() -> None:
        stream._batch(text)

    def item_by_item() -> None:  # a single event's frame, or a batch the SDK cannot type
        for _ in stream._batch_items(_frame.decode(text)):
            pass

    print(
        f"load average before: {os.getloadavg()[0]:.2f}; batch frames of {args.batch} events "
        f"({len(batch):,} bytes)"
    )
    for name, decode in (("batch frame, one pass (the SDK's path)", one_pass),
                         ("frame by frame (general path)", item_by_item)):  # fmt: skip
        best = float("inf")
        for _ in range(3):
            started = time.perf_counter()
            for _ in range(args.frames):
                stream.last_seq = None
                decode()
            best = min(best, time.perf_counter() - started)
        per_event_us = best / (args.frames * args.batch) * 1e6
        print(
            f"SDK decode, {name}: {per_event_us:.2f} us per event (best of 3); one million "
            f"deliveries (issue 21's burst b): {per_event_us:.2f} core-seconds on the clients"
        )


if __name__ == "__main__":
    main()
