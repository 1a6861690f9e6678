"""``purpleflea sim``: write simulated liquidation history into the SQLite store."""

from __future__ import annotations

import argparse
import datetime as dt
import math
import sqlite3
import sys
from pathlib import Path

from purpleflea.formatting import format_usd_exact
from purpleflea.stopping import run_stoppable

DEFAULT_STORE = "./data/purpleflea.sqlite"


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "sim",
        help="simulate liquidation history into the store",
        description=(
            "Simulate N days of liquidations across the simulated perpetual markets and append "
            "them to the SQLite history store (deterministic for a seed and start)."
        ),
    )
    parser.add_argument(
        "--days", type=day_count, required=True, help="days of simulated history (7, 0.5)"
    )
    add_history_store(parser, DEFAULT_STORE)
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--markets", type=market_count, default=275, help="markets (default 275)")
    parser.add_argument(
        "--start",
        type=_utc_date,
        help="first simulated day, YYYY-MM-DD UTC (default: so that history ends at today's "
        "UTC midnight)",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(run=run)


def market_count(text: str) -> int:
    """``--markets`` of ``sim`` and ``serve``: how many simulated markets, checked when the
    flags are read (the simulator would refuse it only once the server was up)."""
    from purpleflea.sim.markets import TICKERS  # noqa: PLC0415 - only when the flag is given

    count = int(text) if text.strip().isdigit() else 0
    if not 1 <= count <= len(TICKERS):
        raise argparse.ArgumentTypeError(
            f"must be a whole number from 1 to {len(TICKERS)}, got {text!r}"
        )
    return count


def day_count(text: str) -> float:
    """``--days``: a finite number of days above 0, checked when the flags are read (``inf``
    ended in an OverflowError traceback, ``7d`` was an "invalid float value")."""
    try:
        days = float(text)
    except ValueError:
        days = math.nan
    if not (math.isfinite(days) and days > 0):
        raise argparse.ArgumentTypeError(
            f"must be a number of days above 0, such as 7 or 0.5, got {text!r}"
        )
    return days


def _utc_date(text: str) -> int:
    """``2025-01-31`` -> ms since the epoch at that UTC midnight."""
    try:
        day = dt.date.fromisoformat(text)
    except ValueError as exc:
        # Why, when it is in the form asked for ("2025-02-30": no such day); Python's words for
        # any other ("Invalid isoformat string: 'March'") only repeat the text.
        why = "" if "isoformat" in str(exc) else f": {exc}"
        raise argparse.ArgumentTypeError(f"not a UTC day (YYYY-MM-DD): {text!r}{why}") from None
    return int(dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC).timestamp() * 1000)


#: The last millisecond a date can name (9999-12-31T23:59:59.999 UTC).
_LAST_MS = 253_402_300_799_999


def _default_start(days: float) -> int:
    today = dt.datetime.now(dt.UTC).date()
    midnight = dt.datetime(today.year, today.month, today.day, tzinfo=dt.UTC)
    return int(midnight.timestamp() * 1000 - days * 86_400_000)


async def _simulate(args: argparse.Namespace) -> int:
    from purpleflea.sim import generate_history  # noqa: PLC0415 (numpy only when used)
    from purpleflea.store.sqlite import SQLiteStore  # noqa: PLC0415

    start = args.start if args.start is not None else _default_start(args.days)
    store = SQLiteStore(args.store)
    try:
        summary = await generate_history(
            store,
            days=args.days,
            seed=args.seed,
            n_markets=args.markets,
            start_ms=start,
            progress=not args.no_progress,
        )
    finally:
        await store.close()
    first = dt.datetime.fromtimestamp(summary.start_ms / 1000, dt.UTC)
    last = dt.datetime.fromtimestamp(summary.end_ms / 1000, dt.UTC)
    big = sum(1 for c in summary.cascades if c.notional_usd >= 10e6)
    print(f"simulated {first:%Y-%m-%d %H:%M} .. {last:%Y-%m-%d %H:%M} UTC into {args.store}")
    if summary.resumed_after is not None:
        after = summary.resumed_after
        print(f"  resumed     after seq {after.seq:,} ({after.id}), stored by an earlier run")
    if summary.events:
        print(f"  events      {summary.events:,} (seq {summary.first_seq:,}..{summary.last_seq:,})")
    else:
        print("  events      0 (the span was stored already)")
    print(f"  markets     {summary.markets} with liquidations")
    print(f"  notional    {format_usd_exact(summary.notional_usd)}")
    print(f"  cascades    {len(summary.cascades):,} true cascades ({big:,} of $10M or more)")
    print(f"  wall time   {summary.wall_s:.1f} s")
    return 0


def add_history_store(parser: argparse.ArgumentParser, default: str) -> None:
    """``--store FILE`` or ``--data-dir DIR``, the history file of ``sim`` and ``backtest``
    (read by :func:`history_store`): every other command names its folder ``--data-dir``."""
    where = parser.add_mutually_exclusive_group()
    where.add_argument(
        "--store", help=f"SQLite history file, or the data folder holding it (default {default})"
    )
    where.add_argument(
        "--data-dir",
        type=Path,
        help="the data folder (as `serve --data-dir`) whose history file to use (default: "
        "the --store default's)",
    )
    parser.set_defaults(default_store=default)


def history_store(args: argparse.Namespace) -> Path:
    """The history file :func:`add_history_store`'s flags name; ValueError for a
    PostgreSQL URL (see :func:`~purpleflea.store.factory.history_file`)."""
    from purpleflea.store.factory import DB_FILE, history_file  # noqa: PLC0415

    if args.data_dir is not None:
        # A folder even when it does not exist yet: `--store new` would be a file named so.
        return Path(args.data_dir) / DB_FILE
    return history_file(args.store if args.store is not None else args.default_store)


def run(args: argparse.Namespace) -> int:
    from purpleflea.store.lock import DataDirBusy, exclusive  # noqa: PLC0415

    try:
        args.store = str(history_store(args))  # `--store data`: the folder's history file
    except ValueError as exc:
        print(f"purpleflea sim: {exc}", file=sys.stderr)
        return 2
    start = args.start if args.start is not None else _default_start(args.days)
    if not 0 <= start + args.days * 86_400_000 <= _LAST_MS or start < 0:
        # Finite days can still be no timestamp: --days 1e12 ended in an OverflowError
        # traceback from the simulation's process.
        origin = "today" if args.start is None else "--start"  # 1970-01-01 is start 0
        print(
            f"purpleflea sim: --days {args.days:g} from {origin} "
            "leaves 1970-01-01 .. 9999-12-31: give fewer days",
            file=sys.stderr,
        )
        return 2
    try:
        # A running server on this store assigns seqs too: one writer per data folder.
        with exclusive(Path(args.store).parent, "purpleflea sim"):
            return run_stoppable(_simulate(args))
    except (DataDirBusy, ValueError) as exc:
        print(f"purpleflea sim: {exc}", file=sys.stderr)
    except sqlite3.Error as exc:
        print(f"purpleflea sim: store {args.store}: {exc}", file=sys.stderr)
    return 2
