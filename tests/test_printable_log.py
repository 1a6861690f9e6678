"""What venues and files say reaches the server's log (an exchange's refusal text, a symbol
it lists, an import's rows): the CLI's log writes each message's control and invisible
characters as escapes, so none of it forges a log line or drives the operator's terminal."""

from __future__ import annotations

import logging
import subprocess
import sys

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
