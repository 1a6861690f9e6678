"""Nothing outside ``venues/`` names a venue: every other module asks the registry.

The source under ``src/purpleflea`` (outside ``venues/``) is searched for every registered
exchange id as a whole word. In Python files the search covers what can name a venue: string
literals (docstrings and f-strings included), comments, and import statements, where venue
folder names are searched too (a venue module is only reachable through an import). Other
identifiers are variables, such as the auth ``gate`` (:class:`purpleflea.server.auth.Gate`),
which shares a word with the Gate exchange but is no reference to it; and a folder name in
prose or a format name (``binance-csv``, a user-facing spelling) is no id. Every other file
(the dashboard's JavaScript and HTML, data files) is searched whole for the ids.
"""

from __future__ import annotations

import io
import re
import tokenize
from pathlib import Path

import purpleflea
from purpleflea.venues import registry

SRC = Path(purpleflea.__file__).parent

#: Words that are no venue reference even where a venue's name could appear, and why.
ALLOWED: dict[tuple[str, str], str] = {
    # The stream endpoints' docstring: the auth gate (server/auth.py's Gate), not the exchange.
    ("server/streaming.py", "over one tracker, bus and gate"): "the auth Gate",
}


def _word(names: set[str]) -> re.Pattern[str]:
    spelled = "|".join(re.escape(name) for name in sorted(names, key=len, reverse=True))
    return re.compile(rf"(?<![A-Za-z0-9_])({spelled})(?![A-Za-z0-9_])")


ID = _word(set(registry.EXCHANGE_IDS))
ID_OR_FOLDER = _word(set(registry.EXCHANGE_IDS) | {venue.name for venue in registry.VENUES})


Texts = list[tuple[int, str, re.Pattern[str]]]


def _python_texts(source: str) -> Texts:
    """(line, text, pattern) of every string literal, comment and import statement."""
    found: Texts = []
    statement: list[str] = []
    start = 0
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type in (tokenize.STRING, tokenize.COMMENT):
            found.append((token.start[0], token.string, ID))
        if token.type == tokenize.NAME and token.string in ("import", "from") and not statement:
            statement, start = [token.string], token.start[0]
        elif statement:
            if token.type in (tokenize.NEWLINE, tokenize.ENDMARKER):
                found.append((start, " ".join(statement), ID_OR_FOLDER))
                statement = []
            elif token.type not in (tokenize.NL, tokenize.COMMENT):
                statement.append(token.string)
    return found


def _texts(path: Path) -> Texts:
    source = path.read_text(encoding="utf-8")
    if path.suffix == ".py":
        return _python_texts(source)
    return [(number, line, ID) for number, line in enumerate(source.splitlines(), 1)]


def venue_names_outside_venues(root: Path) -> list[str]:
    """``path:line: word`` of every venue name outside ``root/venues``."""
    hits: list[str] = []
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root).as_posix()
        if not path.is_file() or relative.startswith("venues/") or "__pycache__" in relative:
            continue
        if path.suffix in (".so", ".pyc", ".png", ".ico", ".woff2"):
            continue
        for line, text, pattern in _texts(path):
            searched = text
            for allowed in (phrase for (file, phrase) in ALLOWED if file == relative):
                searched = searched.replace(allowed, "")
            hits.extend(f"{relative}:{line}: {m.group(1)}" for m in pattern.finditer(searched))
    return hits


def test_no_venue_is_named_outside_venues() -> None:
    assert venue_names_outside_venues(SRC) == []


def test_the_search_finds_each_kind_of_reference(tmp_path: Path) -> None:
    (tmp_path / "venues").mkdir()
    (tmp_path / "venues" / "x.py").write_text('EXCHANGE = "okx"\n')
    (tmp_path / "a.py").write_text(
        "from purpleflea.venues import bybit\n"
        "import purpleflea.venues.deribit as d\n"
        "gate = object()  # a variable: fine\n"
        "# the kraken_futures feed\n"
        'ids = ("binance_usdm", f"{x}:htx")\n'
        '"""Docstring naming hyperliquid."""\n'
        "self.gate.limit()\n"
    )
    (tmp_path / "b.js").write_text('export const LIST = ["dydx_v4"];\n')
    (tmp_path / "c.py").write_text('x = "okx_like"  # okxish, binance-csv, Bybit\nokx = 1\n')
    assert venue_names_outside_venues(tmp_path) == [
        "a.py:1: bybit",
        "a.py:2: deribit",
        "a.py:4: kraken_futures",
        "a.py:5: binance_usdm",
        "a.py:5: htx",
        "a.py:6: hyperliquid",
        "b.js:1: dydx_v4",
    ]
