"""What every paged REST list shares: reading and setting one query parameter of a page's URL.

Values are written as given, not percent-encoded again: a cursor an exchange hands out is
already in the form it wants back (Bybit's ``nextPageCursor`` is ``first%3DBIOUSDT%26...``,
and its own SDK sends it verbatim).
"""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit


def query_value(url: str, name: str) -> str | None:
    """The raw value of query parameter ``name`` of ``url``, or None when it has none."""
    for part in urlsplit(url).query.split("&"):
        key, sep, value = part.partition("=")
        if key == name and sep:
            return value
    return None


def with_query(url: str, name: str, value: str) -> str:
    """``url`` with query parameter ``name`` set to ``value`` (replacing any it had)."""
    parts = urlsplit(url)
    kept = [p for p in parts.query.split("&") if p and p.partition("=")[0] != name]
    return urlunsplit(parts._replace(query="&".join([*kept, f"{name}={value}"])))
