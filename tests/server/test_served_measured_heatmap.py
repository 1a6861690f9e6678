"""``purpleflea serve`` with no flags (the simulated market) samples the simulator's
Hyperliquid share through its local server: the measured heatmap is served within 90 s of the
start, and the estimate-versus-measured rank correlation is in the metrics."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.ports import ANNOUNCED, announced_port, read_until

ACCEPTANCE_S = 90.0


def test_serve_on_the_simulated_market_shows_the_measured_heatmap_within_90_s(
    tmp_path: Path,
) -> None:
    started = time.monotonic()
    process = subprocess.Popen(
        [sys.executable, "-m", "purpleflea.cli", "serve", "--data-dir", str(tmp_path),
         "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )  # fmt: skip
    try:
        # On the port it chose, which its banner names (tests/ports.py).
        banner = read_until(process.stdout, ANNOUNCED.pattern, timeout=ACCEPTANCE_S)
        url = f"http://127.0.0.1:{announced_port(banner[-1])}"
        key = None
        measured = None
        with httpx.Client(base_url=url, timeout=5.0) as http:
            while time.monotonic() - started < ACCEPTANCE_S:
                time.sleep(0.5)
                assert process.poll() is None, process.communicate()[0]
                try:
                    if key is None:
                        key = http.post("/v1/keys", json={"account": "t"}).json()["key"]
                    answer = http.get(
                        "/v1/heatmap/BTC-PERP",
                        params={"source": "measured"},
                        headers={"Authorization": f"Bearer {key}"},
                    )
                except httpx.HTTPError:
                    continue
                if answer.status_code == 200:
                    body = answer.json()
                    if any(body["long_usd"]) or any(body["short_usd"]):
                        measured = body
                        break
            elapsed = time.monotonic() - started
            assert measured is not None, f"no measured heatmap within {ACCEPTANCE_S:g} s"
            assert measured["source"] == "measured"
            assert 0 < measured["coverage"] <= 1
            assert measured["accounts"] > 0
            # The correlation is published as soon as both maps exist: the estimate's after the
            # simulator's first open-interest snapshot (every 10 s of the served market).
            deadline = started + 150
            while True:
                metrics = http.get("/v1/metrics", headers={"Authorization": f"Bearer {key}"})
                if 'heatmap_estimate_vs_measured_spearman{market="BTC-PERP"}' in metrics.text:
                    break
                assert time.monotonic() < deadline, metrics.text[-2000:]
                time.sleep(1)
        print(f"measured heatmap after {elapsed:.1f} s, coverage {measured['coverage']:.4f}")
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
