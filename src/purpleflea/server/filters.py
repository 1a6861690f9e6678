"""Stream subscriptions: parse, validate and match the server-side filters.

One parser serves the WebSocket ``subscribe`` message and the SSE query string, so both
streams accept exactly the same filters and reject bad ones with the same message.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from starlette.datastructures import QueryParams

from purpleflea.model import CascadeAlert, Liquidation, market_name, order_side_hint
from purpleflea.store.base import Query
from purpleflea.venues.venue import COVERAGES

CHANNELS = ("liquidations", "cascades")
#: The fields that hold several values; in a query string each may be repeated or
#: comma-separated (``?markets=BTC-PERP&markets=ETH-PERP``, ``?markets=BTC-PERP,ETH-PERP``).
LIST_FIELDS = ("channels", "markets", "exchanges", "sides", "coverages")
SIDES = ("long", "short")
_MAX_LIST = 500


class BadSubscription(ValueError):
    """A subscription the server cannot honour; the message says which field and why.
    ``code``: ``bad_subscription``, or ``resume_ahead`` for a ``since_seq`` beyond this
    server's last seq (a store started anew, or another cluster): the same filters are fine
    without it, so a client may follow the live feed, where another refusal would need the
    user to change them."""

    def __init__(self, message: str, code: str = "bad_subscription") -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True, slots=True)
class StreamFilter:
    """What one client wants: channels, and filters that combine with AND."""

    channels: frozenset[str] = frozenset({"liquidations"})
    min_usd: float = 0.0
    markets: frozenset[str] = frozenset()
    exchanges: frozenset[str] = frozenset()
    sides: frozenset[str] = frozenset()
    #: Coverage classes of the events' feeds (``complete``, ``snapshot``, ``sampled``).
    coverages: frozenset[str] = frozenset()
    since_seq: int | None = None

    def wants(self, item: Liquidation | CascadeAlert) -> bool:
        if isinstance(item, Liquidation):
            if "liquidations" not in self.channels or item.size_usd < self.min_usd:
                return False
            if self.exchanges and item.exchange not in self.exchanges:
                return False
            if self.coverages and item.coverage not in self.coverages:
                return False
        elif "cascades" not in self.channels:
            return False
        if self.markets and item.market not in self.markets:
            return False
        return not (self.sides and item.side not in self.sides)

    def query(self) -> Query:
        """The liquidation filters as a history query: a replay's, run by the store."""
        return Query(
            markets=tuple(sorted(self.markets)),
            exchanges=tuple(sorted(self.exchanges)),
            sides=tuple(sorted(self.sides)),
            coverages=tuple(sorted(self.coverages)),
            min_usd=self.min_usd,
        )

    def describe(self) -> dict[str, Any]:
        return {
            "channels": sorted(self.channels),
            "min_usd": self.min_usd,
            "markets": sorted(self.markets),
            "exchanges": sorted(self.exchanges),
            "sides": sorted(self.sides),
            "coverages": sorted(self.coverages),
            "since_seq": self.since_seq,
        }


def _strings(name: str, value: Any) -> frozenset[str]:
    if value is None:
        return frozenset()
    if isinstance(value, str):
        items: Iterable[Any] = [v for v in value.split(",") if v]
    elif isinstance(value, list | tuple):
        items = value
    else:
        raise BadSubscription(f"{name} must be a list of strings, got {type(value).__name__}")
    result = []
    for item in items:
        if not isinstance(item, str) or not item.strip() or len(item) > 64:
            raise BadSubscription(f"{name} must hold non-empty strings of <= 64 chars: {item!r}")
        result.append(item.strip())
    if len(result) > _MAX_LIST:
        raise BadSubscription(f"{name} may list at most {_MAX_LIST} values")
    return frozenset(result)


def spelled_as_known(values: Iterable[str], known: Iterable[str]) -> tuple[str, ...]:
    """``values`` with each one that names a ``known`` value in another case spelled as there
    (``Short`` -> ``short``, an exchange id in capitals -> its id): people type names as they
    read them, as markets are taken in any case. Others are kept as given, for the caller to
    refuse by that name."""
    spelled = {name.casefold(): name for name in known}
    return tuple(spelled.get(value.casefold(), value) for value in values)


def exchange_hint(values: Iterable[str], known: Iterable[str]) -> str:
    """``"; did you mean <venue>_usdm, <venue>_coinm?"`` to end a refusal of ``values`` that
    name a venue rather than its feed ids (the venue's name, as a person or a model writes it;
    the ids add the market kind), else nothing."""
    meant = [
        exchange
        for value in values
        for exchange in known
        if exchange.startswith(value.strip().casefold().replace(" ", "_") + "_")
    ]
    return f"; did you mean {', '.join(dict.fromkeys(meant))}?" if meant else ""


def _known(name: str, value: Any, known: Iterable[str]) -> frozenset[str]:
    return frozenset(spelled_as_known(_strings(name, value), known))


def _number(name: str, value: Any) -> float:
    if isinstance(value, bool):
        raise BadSubscription(f"{name} must be a number, got {value!r}")
    try:
        result = float(value)
    except (TypeError, ValueError):
        raise BadSubscription(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(result) or result < 0:
        raise BadSubscription(f"{name} must be a finite number >= 0, got {value!r}")
    return result


def _seq(value: Any) -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise BadSubscription(f"since_seq must be an integer >= 0, got {value!r}")
    try:
        result = int(value)
    except (TypeError, ValueError):
        raise BadSubscription(f"since_seq must be an integer >= 0, got {value!r}") from None
    if result < 0 or result >= 2**63:
        raise BadSubscription(f"since_seq must be an integer >= 0, got {value!r}")
    return result


_FIELDS = {"channels", "min_usd", "markets", "exchanges", "sides", "coverages", "since_seq"}


def _singular_hint(unknown: list[str]) -> str:
    """For the REST routes' singular names (``market``, ``exchange``, ``side``, ``coverage``),
    the stream's plural ones: a client that filtered history with ``?market=`` sees which
    name the stream takes (one spelling each, as the OpenAPI document says)."""
    singular = [name for name in unknown if f"{name}s" in LIST_FIELDS]
    if not singular:
        return ""
    plural = ", ".join(f"{name}s" for name in singular)
    return f" ({', '.join(singular)}: the REST routes' spelling; here it is {plural})"


def query_fields(params: QueryParams) -> dict[str, Any]:
    """A query string's subscription fields, as a subscribe message would carry them: every
    value of a repeated list field counts (not only the last), each split on commas; an empty
    value is kept, so it is refused as the REST routes refuse it. ``api_key`` is left out."""
    fields: dict[str, Any] = {}
    for name in params:
        if name == "api_key":
            continue
        values = params.getlist(name)
        if name in LIST_FIELDS:
            fields[name] = [part for value in values for part in value.split(",")]
        else:
            fields[name] = values[-1]
    return fields


def parse_filter(fields: Mapping[str, Any], *, known_exchanges: Iterable[str]) -> StreamFilter:
    """Build a :class:`StreamFilter` from a subscribe message or query string.

    Raises :class:`BadSubscription` naming the offending field.
    """
    unknown = sorted(set(fields) - _FIELDS)
    if unknown:
        raise BadSubscription(
            f"unknown field(s) {', '.join(unknown)}; allowed: {', '.join(sorted(_FIELDS))}"
            f"{_singular_hint(unknown)}"
        )
    channels = _strings("channels", fields.get("channels")) or frozenset({"liquidations"})
    bad = sorted(channels - set(CHANNELS))
    if bad:
        raise BadSubscription(f"unknown channel(s) {', '.join(bad)}; use {', '.join(CHANNELS)}")
    sides = _known("sides", fields.get("sides"), SIDES)
    bad = sorted(sides - set(SIDES))
    if bad:
        raise BadSubscription(
            f"sides must be long and/or short, got {', '.join(bad)}{order_side_hint(bad)}"
        )
    coverages = _known("coverages", fields.get("coverages"), COVERAGES)
    bad = sorted(coverages - set(COVERAGES))
    if bad:
        raise BadSubscription(
            f"coverages must be among {', '.join(COVERAGES)}, got {', '.join(bad)}"
        )
    allowed = set(known_exchanges)
    exchanges = _known("exchanges", fields.get("exchanges"), allowed)
    bad = sorted(exchanges - allowed)
    if bad:
        raise BadSubscription(
            f"unknown exchange(s) {', '.join(bad)}; known: {', '.join(sorted(allowed))}"
            f"{exchange_hint(bad, sorted(allowed))}"
        )
    try:
        markets = frozenset(market_name(m) for m in _strings("markets", fields.get("markets")))
    except ValueError as exc:  # BadSubscription is one too; market_name's: a name no event
        # can carry would match nothing, silently
        raise BadSubscription(str(exc)) from None
    min_usd = _number("min_usd", fields.get("min_usd", 0))
    return StreamFilter(
        channels=channels,
        min_usd=min_usd,
        markets=markets,
        exchanges=exchanges,
        sides=sides,
        coverages=coverages,
        since_seq=_seq(fields.get("since_seq")),
    )
