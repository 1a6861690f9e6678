"""A dependency-free progress bar for long CLI work (simulate, import, export, backtest).

It writes to stderr, redraws at most ``per_second`` times a second, and degrades to a line
every ~10% when stderr is not a terminal (CI logs stay readable).
"""

from __future__ import annotations

import sys
import time
from typing import TextIO


class Progress:
    """``with Progress(total, "simulating") as bar: bar.advance(n)``."""

    def __init__(
        self,
        total: float,
        label: str,
        *,
        unit: str = "",
        stream: TextIO | None = None,
        per_second: float = 10.0,
    ) -> None:
        self.total = max(float(total), 1e-12)
        self.label = label
        self.unit = unit
        self.stream = stream if stream is not None else sys.stderr
        self.done = 0.0
        self._interval = 1.0 / per_second
        self._started = time.monotonic()
        self._last_draw = 0.0
        self._last_decile = -1
        self._tty = self.stream.isatty()

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.finish()

    def advance(self, amount: float = 1.0) -> None:
        self.done = min(self.total, self.done + amount)
        self._draw(final=False)

    def finish(self) -> None:
        self._draw(final=True)

    def _draw(self, *, final: bool) -> None:
        now = time.monotonic()
        fraction = self.done / self.total
        if self._tty:
            if not final and now - self._last_draw < self._interval:
                return
            self._last_draw = now
            width = 30
            filled = int(width * fraction)
            bar = "#" * filled + "-" * (width - filled)
            end = "\n" if final else ""
            self.stream.write(f"\r{self.label} [{bar}] {self._figures(now)}{end}")
        else:
            decile = int(fraction * 10)
            if decile == self._last_decile and not final:
                return
            if final and decile == self._last_decile == 10:
                return
            self._last_decile = decile
            self.stream.write(f"{self.label}: {self._figures(now)}\n")
        self.stream.flush()

    def _figures(self, now: float) -> str:
        elapsed = now - self._started
        fraction = self.done / self.total
        eta = elapsed / fraction - elapsed if fraction > 0 else 0.0
        unit = f" {self.unit}" if self.unit else ""
        return (
            f"{fraction:6.1%} {self.done:,.0f}/{self.total:,.0f}{unit} "
            f"elapsed {elapsed:5.1f} s, eta {eta:5.1f} s"
        )
