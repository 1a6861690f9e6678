"""The position sampler on the served simulator: coverage over time under its default budget
and the estimate-versus-measured rank correlation, per Hyperliquid market.

    nice .venv/bin/python bench/served_sampler.py [--minutes 15] [--every 30]

Starts ``purpleflea serve`` exactly as a user does (no flags: the simulated market, its
Hyperliquid share served on loopback, the sampler at its default budget of 300 polls a minute)
in a fresh data folder on a free loopback port, and reads ``/v1/metrics`` every ``--every``
seconds: ``measured_heatmap_coverage`` (sampled notional / both sides of open interest) and
``heatmap_estimate_vs_measured_spearman`` (the mean over sides of the Spearman correlation of
the estimated heatmap's bucket notionals with the measured map's, over the measured map's
buckets: mark +/- 20 %), plus the measured map's accounts and uncapped coverage (the raw
ratio the capped ``coverage`` hides past 1). Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from serving import until_serving

_SAMPLE = re.compile(r'^purpleflea_(\w+)\{market="([^"]+)"\} (\S+)$', re.MULTILINE)
_WANTED = ("measured_heatmap_coverage", "heatmap_estimate_vs_measured_spearman")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=15.0)
    parser.add_argument("--every", type=float, default=30.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as data:
        started = time.monotonic()
        log = Path(data) / "server.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                [sys.executable, "-m", "purpleflea.cli", "serve", "--data-dir", data,
                 "--port", "0"],
                stdout=out,
                stderr=subprocess.STDOUT,
            )  # fmt: skip
        rows: list[tuple[float, dict[tuple[str, str], float], dict[str, tuple[int, float]]]]
        rows = []
        try:
            port = asyncio.run(until_serving(log, timeout_s=300, process=process))
            url = f"http://127.0.0.1:{port}"
            with httpx.Client(base_url=url, timeout=10.0) as http:
                key = http.post("/v1/keys", json={"account": "bench"}).json()["key"]
                auth = {"Authorization": f"Bearer {key}"}
                next_at = started + args.every
                while next_at <= started + args.minutes * 60 + 1:
                    time.sleep(max(0.0, next_at - time.monotonic()))
                    next_at += args.every
                    text = http.get("/v1/metrics", headers=auth).text
                    values = {
                        (name, market): float(value)
                        for name, market, value in _SAMPLE.findall(text)
                        if name in _WANTED
                    }
                    accounts = {}
                    for market in sorted({m for _, m in values}):
                        answer = http.get(
                            f"/v1/heatmap/{market}", params={"source": "measured"}, headers=auth
                        )
                        if answer.status_code == 200:
                            body = answer.json()
                            accounts[market] = (
                                int(body["accounts"]),
                                float(body["coverage_uncapped"]),
                            )
                    rows.append((time.monotonic() - started, values, accounts))
                    print(f"{rows[-1][0]:.0f} s {values} {accounts}", file=sys.stderr, flush=True)
        finally:
            process.terminate()
            process.wait(30)
    markets = sorted({m for _, values, _ in rows for _, m in values})
    head = ["time"] + [
        f"{m} {label}"
        for m in markets
        for label in ("coverage", "uncapped", "accounts", "Spearman")
    ]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for elapsed, values, accounts in rows:
        cells = [f"{elapsed / 60:.1f} min"]
        for m in markets:
            coverage = values.get(("measured_heatmap_coverage", m))
            rho = values.get(("heatmap_estimate_vs_measured_spearman", m))
            held, uncapped = accounts.get(m, (None, None))
            cells += [
                "-" if coverage is None else f"{coverage:.3f}",
                "-" if uncapped is None else f"{uncapped:.3f}",
                "-" if held is None else str(held),
                "-" if rho is None else f"{rho:.2f}",
            ]
        print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
