"""Events as data frames for notebooks and backtests: pandas or polars, whichever you have.

Neither library is a dependency of the SDK; each is imported on first use and a missing one
raises an :class:`ImportError` that says what to install. Columns are the event schema's fields
(``id, seq, exchange, symbol, market, side, price, quantity, size_usd, ts, received_at,
cascade_score, coverage``); ``ts`` and ``received_at`` stay integers (ms since the epoch, UTC)
so nothing is lost; convert with ``pd.to_datetime(df.ts, unit="ms", utc=True)`` when you want
datetimes.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Mapping
from typing import Any

from purpleflea.model import Liquidation

COLUMNS: tuple[str, ...] = Liquidation.__struct_fields__


def _require(module: str, extra: str) -> Any:
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ImportError(
            f"{extra} needs {module}, which is not installed: pip install {module}"
        ) from exc


def columns(events: Iterable[Liquidation | Mapping[str, Any]]) -> dict[str, list[Any]]:
    """Column lists of ``events`` (structs or the dicts the JSON API returns)."""
    data: dict[str, list[Any]] = {name: [] for name in COLUMNS}
    for event in events:
        for name in COLUMNS:
            data[name].append(event[name])
    return data


def to_pandas(events: Iterable[Liquidation | Mapping[str, Any]]) -> Any:
    """A ``pandas.DataFrame`` of ``events``, one row each, in the given order."""
    pd = _require("pandas", "purpleflea.frames.to_pandas")
    return pd.DataFrame(columns(events), columns=list(COLUMNS))


def to_polars(events: Iterable[Liquidation | Mapping[str, Any]]) -> Any:
    """A ``polars.DataFrame`` of ``events``, one row each, in the given order."""
    pl = _require("polars", "purpleflea.frames.to_polars")
    return pl.DataFrame(columns(events))
