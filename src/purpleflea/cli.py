"""The ``purpleflea`` command: a thin dispatcher over :mod:`purpleflea.commands`."""

from __future__ import annotations

import argparse
import contextlib
import importlib
import logging
import os
import signal
import sys
from collections.abc import Callable, Sequence

from purpleflea.formatting import log_printably
from purpleflea.stopping import exit_status, interrupted_by, say_stopped, signals_as_interrupts

#: Subcommands in the order ``--help`` lists them; each is ``purpleflea.commands.<name>``.
COMMANDS: tuple[str, ...] = (
    "serve",
    "tail",
    "history",
    "keys",
    "webhooks",
    "sim",
    "backtest",
    "heatmap",
    "importer",
    "export",
    "mcp",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="purpleflea",
        description="Purple Flea liquidation tracker: serve, stream, query and simulate.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"purpleflea.commands.{name}").register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command. Stopped by Ctrl-C (SIGINT) or SIGTERM, at any moment from here on, a
    command says so in one line and exits with 128 + the signal (130, 143), no traceback
    (:mod:`purpleflea.stopping`)."""
    command: str | None = None
    try:
        with signals_as_interrupts():
            args = build_parser().parse_args(argv)
            command = args.command
            configure_logging(verbose=args.verbose)
            run: Callable[[argparse.Namespace], int] = args.run
            return run(args)
    except KeyboardInterrupt:
        signum = interrupted_by()
        say_stopped(command, signum)
        return exit_status(signum)
    except BrokenPipeError:
        return _reader_gone()


def configure_logging(*, verbose: bool) -> None:
    """Every command's log on stderr: DEBUG with ``-v``, else INFO (httpx's per-request lines
    left out), each message's control and invisible characters written as escapes."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    log_printably()
    if not verbose:
        # httpx logs every request at INFO: noise in a command's output (-v shows it).
        logging.getLogger("httpx").setLevel(logging.WARNING)


def _reader_gone() -> int:
    """Our stdout's reader left (``| head`` read enough): stop as ``cat file | head`` does,
    with nothing on stderr and 128 + SIGPIPE, and send what is still buffered nowhere (its
    flush at exit would fail again, printed as "Exception ignored")."""
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    return 128 + signal.SIGPIPE


if __name__ == "__main__":
    sys.exit(main())
