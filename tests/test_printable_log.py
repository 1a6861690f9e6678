"""What venues and files say reaches the server's log (an exchange's refusal text, a symbol
it lists, an import's rows): the CLI's log writes each message's control and invisible
characters as escapes, so none of it forges a log line or drives the operator's terminal."""

from __future__ import annotations

import io
import logging
import subprocess
import sys

import pytest

from purpleflea.formatting import PrintableLog

HOSTILE = "refused: \x1b]0;owned\x07\x1b[2J\r\n2026-12-07 09:00:00 ERROR forged line\u202e"


def test_the_cli_log_escapes_what_a_message_carries() -> None:
    # The CLI's own logging setup, in a process of its own (basicConfig is once a process).
    code = (
        "import logging\n"
        "from purpleflea import cli\n"
        "cli.configure_logging(verbose=False)\n"
        f"logging.getLogger('purpleflea.ingest').warning('okx: %s', {HOSTILE!r})\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    [line] = [x for x in done.stderr.splitlines() if "okx:" in x]
    assert line.endswith(
        "okx: refused: \\x1b]0;owned\\x07\\x1b[2J\\r\\n2026-12-07 09:00:00 ERROR forged line\\u202e"
    )
    assert "forged line" not in done.stderr.replace(line, "")


def test_a_traceback_keeps_its_lines() -> None:
    record = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed: %s", ("a\nb",), None)
    assert PrintableLog().filter(record)
    assert record.getMessage() == "failed: a\\nb"
    plain = logging.LogRecord("x", logging.ERROR, __file__, 1, "fine %d", (1,), None)
    PrintableLog().filter(plain)
    assert (plain.msg, plain.args) == ("fine %d", (1,))  # untouched when printable


def test_a_message_that_cannot_be_formatted_does_not_raise_where_it_is_logged(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Logging never raises at the call site: a handler reports a record it cannot format
    # ("--- Logging error ---") and the program goes on. The filter formatted the message
    # before the handler's own guard, so a call like this one raised TypeError wherever it
    # was made (an except branch of a connection loop, say), ending what called it.
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(PrintableLog())
    logger = logging.getLogger("tests.printable_log.bad_format")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning("%d events", "many")  # the bug being logged: not a number
        logger.warning("next: %s", "\x1b[2J")
    finally:
        logger.removeHandler(handler)
    assert "--- Logging error ---" in capsys.readouterr().err
    assert stream.getvalue() == "next: \\x1b[2J\n"
