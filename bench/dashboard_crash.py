"""The dashboard during a simulated crash: main-thread long tasks, frame gaps, the page's
element count and the browser's CPU seconds while liquidations stream in at ``--rate``.

Run (from the repository root; niced, the machine is shared)::

    nice -n 5 .venv/bin/python bench/dashboard_crash.py [--rate 500] [--seconds 8]

Starts a real tracker on a loopback port (the tests' harness), opens the page in Debian's
chromium at 1,280 x 900 with one feed row focused (a reader), submits ``--rate`` events a
second over 40 markets for ``--seconds``, and reports: animation frames and their gaps (p50,
p95, max), long tasks (the Long Tasks API: > 50 ms each) and their total, the page's element
count before and after, the feed's row count, and the CPU seconds of chromium's processes
(from /proc: user + system of every chromium process this script started) over the crash,
per 1,000 events. Wall-clock figures move with the machine's load; the CPU seconds less so,
and least the main thread's own CPU time per kind of work (a Chrome trace: layout, paint,
the feed's animation-frame callback, ...), printed per frame drawn.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import os
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # the tests' server harness is reused, not copied

from playwright.async_api import async_playwright  # noqa: E402
from tests.dashboard.harness import (  # noqa: E402
    FRAME_PROBE,
    dashboard_server,
    launch_chromium,
    now_ms,
    paced_crash,
)
from tests.server.conftest import venue_event  # noqa: E402


def chromium_cpu_s() -> float:
    """User + system CPU seconds of this process's chromium descendants."""
    parents: dict[int, int] = {}
    names: dict[int, str] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2 :].split()
        parents[int(entry)] = int(fields[1])
        names[int(entry)] = name
    mine = {os.getpid()}
    grew = True
    while grew:
        grew = False
        for pid, parent in parents.items():
            if parent in mine and pid not in mine:
                mine.add(pid)
                grew = True
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in mine:
        if "chrom" not in names.get(pid, ""):
            continue
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        total += (int(fields[11]) + int(fields[12])) / tick
    return total


#: Main-thread work of a frame, as Chrome's trace names it.
FRAME_WORK = ("UpdateLayoutTree", "Layout", "PrePaint", "Paint", "Layerize", "FireAnimationFrame")


def main_thread_ms(trace: Path) -> tuple[dict[str, float], int]:
    """Thread CPU ms per event name on the renderer's main thread (the one running the page's
    scripts), and how many frames it drew (its Layerize passes)."""
    loaded = json.loads(trace.read_text())
    events = loaded["traceEvents"] if isinstance(loaded, dict) else loaded
    threads = collections.Counter(
        (e.get("pid"), e.get("tid")) for e in events if e.get("name") == "FunctionCall"
    )
    main_thread = threads.most_common(1)[0][0]
    spent: collections.Counter[str] = collections.Counter()
    for e in events:
        if (e.get("pid"), e.get("tid")) == main_thread and e.get("ph") == "X":
            spent[e["name"]] += e.get("tdur", e.get("dur", 0)) / 1000
    frames = sum(
        1
        for e in events
        if (e.get("pid"), e.get("tid")) == main_thread
        and e.get("ph") == "X"
        and e.get("name") == "Layerize"
    )
    return dict(spent), frames


async def main(rate: int, seconds: int) -> None:
    trace = Path(tempfile.mkdtemp()) / "trace.json"
    with tempfile.TemporaryDirectory() as data:
        async with dashboard_server(Path(data)) as running, async_playwright() as pw:
            browser = await launch_chromium(pw)
            page = await browser.new_page(viewport={"width": 1280, "height": 900})
            await page.add_init_script(
                f"localStorage.setItem('purpleflea.api_key', {running.key!r})"
            )
            await page.goto(running.url + "/")
            await page.wait_for_selector(".status-live")
            await running.push(venue_event(market="READ-PERP", size_usd=1_000, ts=now_ms()))
            await page.locator("#feed .row").first.click()
            await page.wait_for_timeout(500)
            await page.evaluate(FRAME_PROBE)
            await browser.start_tracing(
                page=page,
                path=trace,
                categories=["devtools.timeline", "disabled-by-default-devtools.timeline"],
            )
            cpu0, load0 = chromium_cpu_s(), os.getloadavg()[0]
            await paced_crash(running, rate, seconds)
            await page.wait_for_timeout(500)
            cpu = chromium_cpu_s() - cpu0
            await browser.stop_tracing()
            probe = await page.evaluate(
                "() => ({ ...window.probe, now: document.getElementsByTagName('*').length,"
                " rows: document.querySelectorAll('#feed .row').length,"
                " focused: document.activeElement.matches('#feed .row') })"
            )
            await browser.close()
    frames = sorted(probe["frames"])
    events = rate * seconds
    load1 = os.getloadavg()[0]
    print(f"{events} events at {rate}/s over {seconds} s, load {load0:.1f} -> {load1:.1f}")
    print(
        f"frames {len(frames)}: gap p50 {frames[len(frames) // 2]:.0f} ms, "
        f"p95 {frames[int(0.95 * len(frames))]:.0f} ms, max {frames[-1]:.0f} ms"
    )
    print(f"long tasks {len(probe['longTasks'])}, total {sum(probe['longTasks']):.0f} ms")
    print(
        f"elements {probe['elements']} -> {probe['now']}, feed rows {probe['rows']}, "
        f"reader's row still focused: {probe['focused']}"
    )
    print(f"chromium CPU {cpu:.2f} s, {1000 * cpu / events:.2f} s per 1,000 events")
    spent, drawn = main_thread_ms(trace)
    trace.unlink()
    print(
        f"main thread (trace, thread CPU): {spent.get('RunTask', 0):.0f} ms in tasks, "
        f"{drawn} frames; a frame: "
        + ", ".join(f"{name} {spent.get(name, 0) / max(1, drawn):.1f} ms" for name in FRAME_WORK)
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=int, default=500)
    parser.add_argument("--seconds", type=int, default=8)
    args = parser.parse_args()
    asyncio.run(main(args.rate, args.seconds))
