"""SyncLiquidationClient is LiquidationClient without ``await``: every public method has the
same explicit parameters (names, kinds, defaults, types) and the awaited result's type."""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable
from typing import Any

import pytest

from purpleflea.client import LiquidationClient, SyncLiquidationClient

# Async-only members and why the blocking client has none.
ASYNC_ONLY = {
    "auth_headers": "the stream's and requests' header builder, not a query",
    "aclose": "close() ends the blocking client",
}
# The two results that cannot be the same type: the async ones are asynchronous iterators.
RETURNS = {
    "stream": ("Stream", "SyncStream"),
    "history_all": ("AsyncIterator[Liquidation]", "Iterator[Liquidation]"),
}


def _methods(cls: type) -> dict[str, Callable[..., Any]]:
    return {
        name: member
        for name, member in vars(cls).items()
        if not name.startswith("_") and inspect.isfunction(member)
    }


ASYNC = _methods(LiquidationClient)
SYNC = _methods(SyncLiquidationClient)


def test_the_blocking_client_has_every_async_method() -> None:
    assert set(ASYNC) - set(ASYNC_ONLY) == set(SYNC) - {"close"}


def _shape(signature: inspect.Signature) -> list[tuple[str, Any, Any, Any]]:
    return [(p.name, p.kind, p.default, p.annotation) for p in signature.parameters.values()]


@pytest.mark.parametrize("name", sorted(set(ASYNC) - set(ASYNC_ONLY)))
def test_same_parameters_and_result(name: str) -> None:
    awaited, blocking = inspect.signature(ASYNC[name]), inspect.signature(SYNC[name])
    assert _shape(blocking) == _shape(awaited)
    assert all(p.kind is not inspect.Parameter.VAR_KEYWORD for p in blocking.parameters.values())
    expected = RETURNS.get(name, (awaited.return_annotation, awaited.return_annotation))
    assert (awaited.return_annotation, blocking.return_annotation) == expected


@pytest.mark.parametrize("name", sorted(set(ASYNC) - set(ASYNC_ONLY)))
def test_same_overloads(name: str) -> None:
    awaited = [inspect.signature(f) for f in typing.get_overloads(ASYNC[name])]
    blocking = [inspect.signature(f) for f in typing.get_overloads(SYNC[name])]
    assert [(_shape(s), s.return_annotation) for s in blocking] == [
        (_shape(s), s.return_annotation) for s in awaited
    ]


def test_history_all_takes_what_history_takes() -> None:
    # Its own page size: the server's largest (tests/client/test_history_all_pages.py).
    for cls in (LiquidationClient, SyncLiquidationClient):
        history = _shape(inspect.signature(cls.history))
        every = _shape(inspect.signature(cls.history_all))
        assert [p for p in every if p[0] != "limit"] == [p for p in history if p[0] != "limit"]
        assert [p[:2] + p[3:] for p in every if p[0] == "limit"] == [
            p[:2] + p[3:] for p in history if p[0] == "limit"
        ]


def test_the_constructors_match() -> None:
    assert _shape(inspect.signature(SyncLiquidationClient.__init__)) == _shape(
        inspect.signature(LiquidationClient.__init__)
    )


def test_the_check_sees_a_drift() -> None:
    # A wrapper whose parameter lost its type would pass a names-only comparison.
    class Drifted(SyncLiquidationClient):
        def cascades(  # type: ignore[override]
            self, *, status: str = "all", markets: Any = None, limit: int = 100, market: Any = None
        ) -> list[Any]:
            return []

    drifted = inspect.signature(Drifted.cascades)
    assert _shape(drifted) != _shape(inspect.signature(LiquidationClient.cascades))
