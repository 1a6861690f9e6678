"""Normalizer: the public liquidation channel's frames -> events, pure (no I/O, no clock).

Fill in:

- the module docstring: the frame shapes, and the semantics from shared/EXCHANGES.md (read its
  Traps first): is the side field the order's or the position's, is the price a fill or a
  bankruptcy price, is the size in coins, USD or contracts;
- msgspec Structs for the frames, decoded with ``FrameDecoder(EXCHANGE, _Frame)`` from
  ``venues/_frame.py`` so every malformed frame raises ``FrameError`` naming the field;
- ``market(symbol) -> symbols.Market | None`` with ``venues/symbols.py`` (``BTC-PERP``,
  ``BTC-20241227``, unit multipliers such as ``1000PEPE``);
- ``normalize(frame, instruments=NO_INSTRUMENTS) -> list[VenueLiquidation]``: control frames
  (acks, pongs) yield nothing; sizes through ``venues/_units.py`` (``from_coins``,
  ``from_usd``, ``from_contracts``) and the event through ``_units.liquidation``; a stable,
  content-based ``id`` so a repeat after a reconnect deduplicates; a frame of many rows reads
  them with ``_frame.rows_events`` and answers with ``_frame.all_or_partial``, so one row it
  cannot read costs that row, not the push (``PartialFrame``).

Tests: real frames in ``tests/venues/frames/`` with the expected events, and
``tests/venues/test_<name>.py``. Example: ``venues/okx/normalizer.py``.
"""
