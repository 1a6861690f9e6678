"""What every instrument-catalog parser shares: its error type and value checks.

A parser turns one public REST body listing an exchange's contracts into
:class:`~purpleflea.model.Instrument` rows. A body it cannot read raises :class:`CatalogError`
naming the exchange; a row without a usable contract size is logged and skipped, so one odd
listing never costs the rest of the catalog.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any

import msgspec

from purpleflea.model import Instrument
from purpleflea.venues._connection import as_text, json_object

log = logging.getLogger("purpleflea.ingest.catalog")


class CatalogError(ValueError):
    """A REST instrument list could not be read."""


def json_body(exchange: str, body: bytes) -> Any:
    try:
        return json.loads(body)
    except ValueError as exc:
        raise CatalogError(f"{exchange} instruments: not JSON: {exc}") from None


def rows(exchange: str, value: Any, where: str) -> list[dict[str, Any]]:
    if not isinstance(value, list) or not all(isinstance(row, dict) for row in value):
        raise CatalogError(f"{exchange} instruments: {where} is not a list of objects")
    return value


def size(exchange: str, symbol: str, value: Any) -> float | None:
    """A contract size > 0, or None (logged) when ``value`` is not one."""
    try:
        found = float(value)
    except (TypeError, ValueError):
        log.warning("%s instruments: %s has no usable contract size: %r", exchange, symbol, value)
        return None
    return found if found > 0 else None


def linear(exchange: str, symbol: str, contract_size: float) -> Instrument:
    return Instrument(exchange=exchange, symbol=symbol, kind="linear", contract_size=contract_size)


def inverse(exchange: str, symbol: str, contract_size: float) -> Instrument:
    return Instrument(exchange=exchange, symbol=symbol, kind="inverse", contract_size=contract_size)


def quanto(
    exchange: str, symbol: str, contract_size: float, settle_usd: float | None
) -> Instrument:
    """A contract worth ``contract_size`` x price in the settle coin, whose USD price is
    ``settle_usd`` (None: unknown, the contract stays unsized)."""
    return Instrument(
        exchange=exchange,
        symbol=symbol,
        kind="quanto",
        contract_size=contract_size,
        settle_usd=settle_usd,
    )


def quantos_at(
    exchange: str, symbol: str, mark: Any, catalog: Mapping[str, Instrument]
) -> list[Instrument]:
    """The catalog's quantos re-priced at the settle coin's USD price ``mark`` (the mark of
    ``symbol``, the venue's own contract on that coin), or none when it is not a price."""
    price = size(exchange, symbol, mark)
    if price is None:
        return []
    return [
        msgspec.structs.replace(row, settle_usd=price)
        for row in catalog.values()
        if row.kind == "quanto"
    ]


def coded_error(body: bytes, code: str, message: str) -> str | None:
    """The error of a REST envelope whose ``code`` field is ``0`` (or ``"0"``) on success and
    whose ``message`` field says why otherwise (OKX ``code``/``msg``, Bybit
    ``retCode``/``retMsg``), as ``"<code> <value>: <message>"``; None for success or a body
    without the envelope (its parser says what is wrong with it)."""
    answer = json_object(body)
    if answer is None or code not in answer or as_text(answer[code]) == "0":
        return None
    return f"{code} {as_text(answer[code])}: {as_text(answer.get(message))}"
