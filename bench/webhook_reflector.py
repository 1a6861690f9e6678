"""Many accounts aim their webhooks at one receiver: what reaches it, per event and per second.

    nice -n 10 .venv/bin/python bench/webhook_reflector.py --accounts 20 --rate 20 --seconds 20
    nice -n 10 .venv/bin/python bench/webhook_reflector.py ... --off   # the defences off

Starts ``purpleflea serve --source replay`` on a loopback port of its choosing (``--port 0``)
over a generated file: one event, a pause of ``--setup`` seconds (while the webhooks are made),
then ``--rate`` liquidations a second for ``--seconds``. Meanwhile ``--accounts`` accounts are
registered (``--registrations-per-min`` is raised for the bench: an attacker has many
addresses) and each asks for ``--per-account`` webhooks at one receiver in this process, a
minimal HTTP server answering 200 that counts the deliveries, their bytes and the distinct
event ids. Reported: webhooks made and refused (by error code), deliveries per event,
deliveries and bytes a second at the receiver (over the busiest seconds and overall), the
server's CPU seconds (``/proc/PID/stat``) over the run, and its webhook counters from
``/v1/metrics``.

``--off`` passes ``--webhooks-per-host 0 --webhook-destination-rate 0
--webhook-destination-bytes 0``: the same code without the per-host cap and the
per-destination budget (what the server did before they existed). ``--no-cap`` turns only the
cap off (the budget alone: what an attacker with a wildcard DNS name, one host per webhook,
meets); ``--budget N`` sets ``--webhook-destination-rate``.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from procfs import cpu_seconds
from serving import until_serving


def write_events(path: Path, *, setup_s: float, rate: float, seconds: float) -> int:
    """The replay file: one event, ``setup_s`` of nothing, then ``rate`` a second."""
    t0 = 1_765_000_000_000
    times = [t0] + [
        t0 + int(setup_s * 1000) + int(n * 1000 / rate) for n in range(int(rate * seconds))
    ]
    with path.open("w") as out:
        for n, ts in enumerate(times):
            price = 60_000.0
            event = {
                "id": f"bench:{n}",
                "exchange": "binance_usdm",
                "symbol": "BTCUSDT",
                "market": "BTC-PERP",
                "side": "long" if n % 2 else "short",
                "price": price,
                "quantity": 2.0,
                "size_usd": 2.0 * price,
                "ts": ts,
            }
            out.write(json.dumps(event) + "\n")
    return len(times)


class Receiver:
    """Counts what arrives: deliveries, bytes, distinct event ids, per second."""

    def __init__(self) -> None:
        self.deliveries = 0
        self.bytes = 0
        self.events: collections.Counter[str] = collections.Counter()
        self.per_second: collections.Counter[int] = collections.Counter()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:  # keep-alive: one connection carries many deliveries
                head = await reader.readuntil(b"\r\n\r\n")
                length = int(re.search(rb"(?i)content-length: *(\d+)", head).group(1))  # type: ignore[union-attr]
                body = await reader.readexactly(length)
                event = re.search(rb"(?i)x-purpleflea-event-id: *(\d+)", head)
                self.deliveries += 1
                self.bytes += len(head) + len(body)
                self.events[event.group(1).decode() if event else "?"] += 1
                self.per_second[int(time.monotonic())] += 1
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
            pass  # the server hung up, or this bench is ending
        finally:
            writer.close()


async def make_webhooks(
    base: str, target: str, accounts: int, per_account: int
) -> collections.Counter[str]:
    """Register the accounts and ask for their webhooks; answers by status and error code."""
    answers: collections.Counter[str] = collections.Counter()
    async with httpx.AsyncClient(base_url=base, timeout=30) as http:
        for n in range(accounts):
            made = await http.post("/v1/keys", json={"account": f"bench{n}", "name": "k"})
            made.raise_for_status()
            key = made.json()["key"]
            for _ in range(per_account):
                answer = await http.post(
                    "/v1/webhooks",
                    json={"url": target},
                    headers={"Authorization": f"Bearer {key}"},
                )
                code = "" if answer.status_code == 201 else answer.json()["error"]["code"]
                answers[f"{answer.status_code} {code}".strip()] += 1
    return answers


def webhook_metrics(text: str) -> dict[str, float]:
    found = {}
    for line in text.splitlines():
        if line.startswith("purpleflea_webhook") and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            found[name.removeprefix("purpleflea_")] = float(value)
    return found


async def run(args: argparse.Namespace) -> None:
    box = Receiver()
    listener = await asyncio.start_server(box.handle, "127.0.0.1", 0)
    target = f"http://127.0.0.1:{listener.sockets[0].getsockname()[1]}/hook"
    with tempfile.TemporaryDirectory(prefix="pf-reflector-") as data:
        events_file = Path(data) / "events.jsonl"
        total = write_events(events_file, setup_s=args.setup, rate=args.rate, seconds=args.seconds)
        command = [str(Path(sys.executable).with_name("purpleflea")), "serve"]
        command += ["--source", "replay", "--replay", str(events_file), "--data-dir", data]
        command += ["--port", "0", "--registrations-per-min", "100000"]
        command += ["--rate-limit", "1000", "--rate-burst", "1000", "--feed-silence", "3600"]
        if args.off:
            command += ["--webhooks-per-host", "0", "--webhook-destination-rate", "0"]
            command += ["--webhook-destination-bytes", "0"]
        elif args.no_cap:
            command += ["--webhooks-per-host", "0"]
        if args.budget is not None:
            command += ["--webhook-destination-rate", str(args.budget)]
        log = Path(data) / "server.log"
        with log.open("w") as out:
            server = subprocess.Popen(command, stdout=out, stderr=out)
        try:
            port = await until_serving(log, timeout_s=30, process=server)
            base = f"http://127.0.0.1:{port}"
            started = time.monotonic()
            answers = await make_webhooks(base, target, args.accounts, args.per_account)
            made_in = time.monotonic() - started
            if made_in > args.setup - 1:
                raise SystemExit(f"making the webhooks took {made_in:.1f} s: raise --setup")
            cpu0 = cpu_seconds(server.pid)
            await asyncio.sleep(args.setup - made_in + args.seconds + args.drain)
            cpu = cpu_seconds(server.pid) - cpu0
            async with httpx.AsyncClient(base_url=base) as http:
                counters = webhook_metrics((await http.get("/v1/metrics")).text)
        finally:
            server.terminate()
            server.wait(30)
            listener.close()
    made = answers.get("201", 0)
    events = len([k for k in box.events if k != "?"])
    busiest = sorted(box.per_second.values(), reverse=True)[:5]
    summary = {
        "accounts": args.accounts,
        "per_account": args.per_account,
        "mode": "off" if args.off else "no-cap" if args.no_cap else "default",
        "budget": args.budget,
        "webhooks_made": made,
        "answers": dict(answers),
        "events_published": total - 1,
        "events_received": events,
        "deliveries": box.deliveries,
        "deliveries_per_event": round(box.deliveries / events, 1) if events else 0,
        "wanted_per_event": made,
        "deliveries_per_s_overall": round(box.deliveries / (args.seconds + args.drain), 1),
        "deliveries_per_s_busiest_5": busiest,
        "bytes_per_s_overall": round(box.bytes / (args.seconds + args.drain)),
        "server_cpu_s": round(cpu, 2),
        "server_cpu_ms_per_delivery": round(1000 * cpu / box.deliveries, 2)
        if box.deliveries
        else None,
        "load_avg": os.getloadavg(),
        "counters": {k: v for k, v in counters.items() if v},
    }
    print(json.dumps(summary, indent=2))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--accounts", type=int, default=20)
    parser.add_argument("--per-account", type=int, default=10)
    parser.add_argument("--rate", type=float, default=20.0, help="events a second")
    parser.add_argument("--seconds", type=float, default=20.0, help="seconds of events")
    parser.add_argument("--setup", type=float, default=20.0, help="seconds to make webhooks in")
    parser.add_argument("--drain", type=float, default=5.0, help="seconds counted after")
    parser.add_argument("--off", action="store_true", help="per-host cap and budget off")
    parser.add_argument("--no-cap", action="store_true", help="per-host cap off, budget on")
    parser.add_argument("--budget", type=float, help="--webhook-destination-rate for the server")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
