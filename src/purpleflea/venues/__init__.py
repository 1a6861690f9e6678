"""The venues: one folder per exchange operator, everything we know about it, and a registry.

``venues/<name>/`` holds a venue's sans-I/O normalizer (raw frame bytes in, liquidation events
out), its connection spec, instrument-catalog and open-interest parsers, recorded-history
rules and constants (ids, display name, coverage), and exposes them as one ``VENUE``
(:class:`~purpleflea.venues.venue.Venue`). :mod:`~purpleflea.venues.registry` collects the
folders; ``venues/_template/`` is the one to copy for a new venue.

Every normalizer has the shape ``normalize(frame, instruments) -> list[VenueLiquidation]``:
pure, no I/O, no clock; control frames (acks, pongs, heartbeats) yield nothing; a frame it
cannot read raises :class:`FrameError` naming the exchange and the problem; a frame of many
liquidations some of whose rows it cannot read raises :class:`PartialFrame`, a FrameError that
carries the other rows' events. Hyperliquid has no
public liquidation feed, only per-address fills and node output, read by its own functions, so
it is not in :data:`NORMALIZERS`.
"""

from __future__ import annotations

from purpleflea.venues._frame import FrameError, PartialFrame
from purpleflea.venues.registry import NORMALIZERS, VENUES
from purpleflea.venues.venue import Normalizer

__all__ = ["NORMALIZERS", "VENUES", "FrameError", "Normalizer", "PartialFrame"]
