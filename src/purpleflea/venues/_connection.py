"""What every connection spec shares: compact JSON messages and subscription batching."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence

from purpleflea.model import Catalog

#: Seconds without a liquidation before a connection carrying a whole market counts as
#: silent, though its keepalive is answered: a gateway that acks the subscribe and answers
#: pings but sends nothing looks alive otherwise. Measured on OKX's real filled liquidation
#: orders of 2026-03-04/05, five USDT swaps (bench/quiet_gaps.py, docs/live.md): the longest
#: gap while all five were recorded was 1,566 s (p99.9 1,138 s), and 2,336 s over the whole
#: file (three coins at its start). A connection of every contract has shorter gaps still; an
#: hour keeps a margin of 2.3 times the five-coin gap and 1.5 times the three-coin one. One
#: coin alone was quiet for up to 7,273 s the same day: a connection of a few contracts gets
#: no liquidation watchdog, only one fed by a liveness channel (``Connection.liveness``).
ALL_MARKET_DATA_TIMEOUT = 3600.0


def compact_json(value: object) -> str:
    return json.dumps(value, separators=(",", ":"))


def chunks(items: Sequence[str], size: int) -> list[list[str]]:
    return [list(items[i : i + size]) for i in range(0, len(items), size)]


def symbols_of(instruments: Catalog, kind: str | None = None) -> list[str]:
    """Sorted symbols of ``instruments`` (of one contract kind if given)."""
    return sorted(s for s, i in instruments.items() if kind is None or i.kind == kind)


def mentions(frame: bytes | str, key: str) -> bool:
    """Whether ``frame`` contains ``key`` (quoted): a microsecond test that spares a refusal
    reader parsing every trade frame of a trade feed (about 20 us for a 2 KB frame)."""
    quoted = f'"{key}"'
    return (quoted.encode() in frame) if isinstance(frame, bytes) else (quoted in frame)


def containing(frame: bytes | str, marker: str) -> dict[str, object] | None:
    """``frame`` as a JSON object if its text contains ``marker`` (a channel name), else
    None: the substring test first, so a liveness reader parses only its channel's frames."""
    found = (marker.encode() in frame) if isinstance(frame, bytes) else (marker in frame)
    return json_object(frame) if found else None


def json_object(frame: bytes | str) -> dict[str, object] | None:
    """``frame`` as a JSON object; None if it is not JSON or not an object (``pong``)."""
    try:
        value = json.loads(frame)
    except (ValueError, RecursionError):  # RecursionError: nested too deeply to be a reply
        return None
    return value if isinstance(value, dict) else None


def listed(message: str, kind: tuple[str, str], field: str) -> tuple[str, ...] | None:
    """The list under ``field`` of a request whose ``kind`` key holds ``kind`` value (Bybit's
    ``op: subscribe`` and its ``args``, Kraken's ``feed: trade`` and its ``product_ids``);
    None for any other message."""
    request = json_object(message)
    key, value = kind
    if request is None or request.get(key) != value:
        return None
    items = request.get(field)
    return tuple(str(item) for item in items) if isinstance(items, list) else None


def as_text(value: object) -> str:
    """An error field as one line: strings as they are, anything else as compact JSON."""
    return value if isinstance(value, str) else compact_json(value)


def event_error(frame: bytes | str) -> str | None:
    """The ``{"event":"error","code":"60012","msg":..}`` reply OKX and Bitget send to a
    request they refuse (acks are ``"event":"subscribe"``)."""
    message = json_object(frame)
    if message is None or message.get("event") != "error":
        return None
    return f"{as_text(message.get('code'))}: {as_text(message.get('msg'))}"


def error_code_in(codes: frozenset[str]) -> Callable[[bytes | str], bool]:
    """A reader of ``{"event":"error","code":..}`` replies (OKX, Bitget): True when the code,
    as text, is one of ``codes``. OKX sends it as a string (``"60014"``); Bitget's docs write
    it as a string and its servers send a number (``30001``), so both read the same."""

    def code_in(frame: bytes | str) -> bool:
        message = json_object(frame)
        return (
            message is not None
            and message.get("event") == "error"
            and as_text(message.get("code")) in codes
        )

    return code_in


def error_object_code_in(codes: frozenset[int]) -> Callable[[bytes | str], bool]:
    """A reader of replies carrying an ``error`` object with an integer ``code`` (Deribit's
    JSON-RPC ``{"error":{"code":10028,"message":..}}``, Gate's ``{"error":{"code":3,
    "message":..},"result":..}``): True when the code is one of ``codes``. A reply without
    such an object (a code as text, a refusal that is no error object) is not."""

    def code_in(frame: bytes | str) -> bool:
        message = json_object(frame)
        error = message.get("error") if message is not None else None
        if not isinstance(error, dict):
            return False
        code = error.get("code")
        return isinstance(code, int) and not isinstance(code, bool) and code in codes

    return code_in
