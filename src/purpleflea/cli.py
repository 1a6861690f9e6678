"""The ``purpleflea`` command: a thin dispatcher over :mod:`purpleflea.commands`."""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import signal
import sys
from collections.abc import Callable, Sequence

# Nothing else of the package before main(): a Ctrl-C there is a traceback (the package's
# own import is light, purpleflea/__init__.py).
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
    # Named from the arguments until they are parsed: a Ctrl-C while the commands' modules
    # are imported (build_parser) is the named command's too.
    given = list(sys.argv[1:] if argv is None else argv)
    command = _named_command(given)
    try:
        with signals_as_interrupts():
            parser = build_parser()
            if not [arg for arg in given if arg not in ("-v", "--verbose")]:
                # argparse's "the following arguments are required: COMMAND" named none.
                parser.print_help(sys.stderr)
                print(
                    "purpleflea: name a command (listed above); `purpleflea COMMAND -h` shows "
                    "its flags",
                    file=sys.stderr,
                )
                return 2
            args = parser.parse_args(given)
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


def _named_command(argv: Sequence[str]) -> str | None:
    """The command ``argv`` names (its first argument that is not an option), if any."""
    names = {"import" if name == "importer" else name for name in COMMANDS}
    first = next((arg for arg in argv if not arg.startswith("-")), None)
    return first if first in names else None


def configure_logging(*, verbose: bool) -> None:
    """Every command's log on stderr: DEBUG with ``-v``, else INFO (httpx's per-request lines
    left out), each message's control and invisible characters written as escapes."""
    import logging  # noqa: PLC0415 - not before main() (see the imports)

    from purpleflea.formatting import log_printably  # noqa: PLC0415

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
