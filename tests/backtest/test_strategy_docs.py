"""docs/cascade.md's user strategy, run as written: the docs named ``on_event`` and
``on_cascade`` but not the broker a strategy trades through, so a builder read the source."""

from __future__ import annotations

import re
from typing import Any

from purpleflea.backtest import run_backtest
from tests.backtest.test_backtest import history
from tests.conftest import REPO


def _documented_strategy() -> Any:
    blocks = re.findall(r"```python\n(.*?)```", (REPO / "docs" / "cascade.md").read_text(), re.S)
    (source,) = [block for block in blocks if "class WithTheCascade" in block]
    namespace: dict[str, Any] = {}
    exec(compile(source, "docs/cascade.md", "exec"), namespace)
    return namespace["WithTheCascade"]()


def test_the_documented_strategy_trades_the_cascade_from_start_to_exhaustion() -> None:
    report = run_backtest(history(), _documented_strategy())
    (trade,) = report.trades
    assert (trade.direction, trade.reason) == (-1, "exhausted")  # short a long cascade
    assert trade.exit_price < trade.entry_price  # the price fell 2000 -> 1800 meanwhile
