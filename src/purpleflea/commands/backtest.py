"""purpleflea backtest: replay stored history through the cascade engine into a strategy.

    purpleflea backtest --store data/purpleflea.sqlite --threshold 7 --flip --out backtest/

Events are scored with the open interest the live server stored beside them (a store written
before open interest was kept scores without the size term). --heatmap also runs the heatmap
over the stored open interest and marks, so scores include the fuel ahead as live (slower:
~0.2 ms per stored row, 312 s for 30 simulated days); it is on by itself for a strategy with
use_heatmaps. Runs the cascade playbook (or --strategy module:Class) with fees, slippage and
orders filled --latency-ms after their decision, and writes report.json, equity.png and
report.html into --out.
"""

from __future__ import annotations

import argparse
import contextlib
import sqlite3
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from purpleflea.commands.sim import add_history_store, history_store
from purpleflea.stopping import run_stoppable

if TYPE_CHECKING:
    from purpleflea.backtest import Playbook, Replay

DEFAULT_STORE = Path("data") / "purpleflea.sqlite"


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "backtest",
        help="backtest the cascade playbook or a strategy on stored history",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_history_store(parser, str(DEFAULT_STORE))
    parser.add_argument(
        "--threshold", type=int, default=7, help="entry cascade score, 0-10 (default 7)"
    )
    parser.add_argument(
        "--flip", action="store_true", help="flip for the bounce on exhaustion (default: off)"
    )
    parser.add_argument("--fee-bps", type=float, default=5.0, help="fee per fill, bps (default 5)")
    parser.add_argument(
        "--slippage-bps", type=float, default=5.0, help="slippage per fill, bps (default 5)"
    )
    parser.add_argument(
        "--latency-ms",
        type=int,
        default=500,
        help="from a decision to its fill: orders fill at the market's price this long after "
        "the event or tick that decided them (default 500)",
    )
    parser.add_argument(
        "--notional", type=float, default=10_000.0, help="USD per trade (default 10000)"
    )
    parser.add_argument(
        "--strategy",
        default=None,
        help="a user strategy 'module:Class' instead of the playbook, the module in the "
        "current folder (mystrat.py: mystrat:Class) or installed (default: the playbook)",
    )
    parser.add_argument(
        "--heatmap",
        action="store_true",
        default=None,
        help="run the heatmap too (fuel in the score; default: off, but on by itself for a "
        "strategy with use_heatmaps)",
    )
    parser.add_argument(
        "--out", type=Path, default=Path("backtest"), help="report folder (default ./backtest)"
    )
    parser.add_argument(
        "--page", type=int, default=20_000, help="events read per store page (default 20000)"
    )
    parser.add_argument(
        "--no-progress",
        action="store_true",
        help="no progress lines on stderr (default: drawn, as sim, import and export do)",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from purpleflea.backtest import Costs, load_strategy, result, start  # noqa: PLC0415
    from purpleflea.backtest.broker import BrokerError  # noqa: PLC0415
    from purpleflea.backtest.report import STALE_FILL_MS, sharpe_text, write_report  # noqa: PLC0415
    from purpleflea.backtest.strategy import Strategy  # noqa: PLC0415
    from purpleflea.clock import utc_iso  # noqa: PLC0415
    from purpleflea.formatting import format_usd_cents, format_usd_exact  # noqa: PLC0415

    if not 0 <= args.threshold <= 10:
        print(
            f"purpleflea backtest: --threshold must be 0-10, got {args.threshold}", file=sys.stderr
        )
        return 2
    try:
        args.store = history_store(args)  # `--store data`: the folder's history file
    except ValueError as exc:
        print(f"purpleflea backtest: {exc}", file=sys.stderr)
        return 2
    if not args.store.is_file():
        print(
            f"purpleflea backtest: no history store at {args.store}: pass --store FILE or "
            "--data-dir DIR "
            "(`purpleflea sim --days N` or `serve` writes one)",
            file=sys.stderr,
        )
        return 2
    try:
        costs = Costs(fee_bps=args.fee_bps, slippage_bps=args.slippage_bps)
        strategy: Strategy = load_strategy(args.strategy) if args.strategy else _playbook(args)
    except ValueError as exc:
        print(f"purpleflea backtest: {exc}", file=sys.stderr)
        return 2
    if args.page < 1:  # 0 read no page and said the store "holds no events"
        print(f"purpleflea backtest: --page must be 1 or more, got {args.page}", file=sys.stderr)
        return 2
    if args.latency_ms < 0:
        print(
            f"purpleflea backtest: --latency-ms must be >= 0, got {args.latency_ms}",
            file=sys.stderr,
        )
        return 2
    unwritable = report_folder_problem(args.out)
    if unwritable:  # said now, not after a replay of minutes that the report then loses
        print(f"purpleflea backtest: --out {args.out}: {unwritable}", file=sys.stderr)
        return 2
    replay = start(strategy, costs=costs, heatmap=args.heatmap, latency_ms=args.latency_ms)
    try:
        run_stoppable(_feed(replay, args.store, args.page, progress=not args.no_progress))
        if not replay.events:
            print(
                f"purpleflea backtest: {args.store} holds no events: nothing to replay "
                "(purpleflea sim, "
                "serve or import fill a store)",
                file=sys.stderr,
            )
            return 2
        replay.finish()
    except sqlite3.Error as exc:  # a file that is no SQLite store, or a damaged one
        print(f"purpleflea backtest: store {args.store}: {exc}", file=sys.stderr)
        return 2
    except BrokerError as exc:  # the strategy's mistake: say which and when, not a traceback
        print(
            f"purpleflea backtest: {args.strategy or 'the playbook'} placed an order the "
            "broker refused at "
            f"{utc_iso(replay.broker.now)} (stream time): {exc}",
            file=sys.stderr,
        )
        return 2
    if not replay.open_interest_rows and replay.events:
        # Imports (`purpleflea import`) and stores older than open interest have none: without
        # the size term a one-day store gave 1,387 alerts instead of 16, with no word of why.
        print(
            f"purpleflea backtest: {args.store} holds no open interest (an imported history, "
            "or a store "
            "written before it was kept): cascades are scored without the size term, by their "
            "pace and price move alone, so far more of them alert than live would",
            file=sys.stderr,
        )
    if replay.first_late is not None:
        seq, ts, clock = replay.first_late
        print(
            f"purpleflea backtest: {replay.late_events:,} events came over a minute before the "
            "replay's "
            f"clock (seq {seq:,} at {utc_iso(ts)} after {utc_iso(clock)}): the store's seq order "
            "goes back in time (older history imported or simulated after newer; a live gap "
            "repaired from a venue's history also comes late, as it did live), and each was "
            "scored at the replay's time, not its own, and priced no fill; backtest a store "
            "that holds its history in time order",
            file=sys.stderr,
        )
    if replay.heatmaps is not None and replay.rows_without_mark:
        print(
            f"purpleflea backtest: {replay.rows_without_mark:,} open interest rows have no mark "
            "(stored "
            "before marks were kept): the heatmap could not use them",
            file=sys.stderr,
        )
    params: dict[str, object] = {
        "store": str(args.store),
        "strategy": args.strategy or "playbook",
        "threshold": args.threshold,
        "flip": args.flip,
        "fee_bps": args.fee_bps,
        "slippage_bps": args.slippage_bps,
        "latency_ms": args.latency_ms,
        "notional_usd": args.notional,
        "heatmap": replay.heatmaps is not None,
        "open_interest_rows": replay.open_interest_rows,
        "late_events": replay.late_events,
    }
    report = result(replay, params)
    try:
        paths = write_report(report, args.out)
    except OSError as exc:  # the folder checked writable before the replay; a full disk since
        print(
            f"purpleflea backtest: --out {args.out}: the report was not written: {exc}",
            file=sys.stderr,
        )
        return 1
    m = report.metrics
    if m.stale_fills:
        oldest_min = m.max_fill_price_age_ms / 60_000
        print(
            f"purpleflea backtest: {m.stale_fills:,} of {2 * m.trades:,} fills took a price "
            "printed over "
            f"{STALE_FILL_MS // 1000} s before them (the oldest {oldest_min:,.1f} "
            "min: a gap in the history, or a market with no print since): a fill takes the "
            "market's newest price, so those trades' PnL is not the market's at their time "
            "(each trade's entry_price_ts and exit_price_ts in report.json)",
            file=sys.stderr,
        )
    sharpe = sharpe_text(m)
    print(
        f"{m.events:,} events, {m.alerts:,} alerts ({m.cascades:,} cascades), {m.trades:,} "
        f"trades, hit rate {m.hit_rate:.1%}, PnL {format_usd_cents(m.pnl_usd)}, max drawdown "
        f"{format_usd_cents(m.max_drawdown_usd)}, most open "
        f"{format_usd_exact(m.max_exposure_usd)}, Sharpe {sharpe}"
        f"\nreport: {paths['html']} ({paths['json'].name}, {paths['png'].name})"
    )
    return 0


def report_folder_problem(out: Path) -> str | None:
    """Why the report cannot be written into ``out``, or None: checked by making the folder
    (and its missing parents) and a file in it, then removing what the check made, so a
    refused run leaves nothing behind."""
    if out.exists() and not out.is_dir():
        return "a file, not a folder (--out names the folder the report files go into)"
    made = [folder for folder in (out, *out.parents) if not folder.exists()]
    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=out):
            pass
    except OSError as exc:
        return f"cannot write the report there: {exc.strerror or exc}"
    finally:
        for folder in made:  # the deepest first
            with contextlib.suppress(OSError):
                folder.rmdir()
    return None


def _playbook(args: argparse.Namespace) -> Playbook:
    from purpleflea.backtest import Playbook  # noqa: PLC0415

    try:
        return Playbook(threshold=args.threshold, flip=args.flip, notional_usd=args.notional)
    except ValueError as exc:
        raise ValueError(f"--notional: {exc}") from None


async def _feed(replay: Replay, path: Path, page: int, *, progress: bool) -> None:
    from purpleflea.backtest import replay_store  # noqa: PLC0415
    from purpleflea.progress import Progress  # noqa: PLC0415
    from purpleflea.store.sqlite import SQLiteStore  # noqa: PLC0415

    store = SQLiteStore(path, read_only=True)  # a running server keeps writing meanwhile
    try:
        if not progress:
            await replay_store(replay, store, page=page)
            return
        total = await store.last_seq()
        with Progress(total, "backtest", unit="seq") as bar:
            await replay_store(
                replay,
                store,
                page=page,
                on_page=lambda events: bar.advance(events[-1].seq - bar.done),
            )
    finally:
        await store.close()
