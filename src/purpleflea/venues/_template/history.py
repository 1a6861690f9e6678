"""Recorded history: how files recorded from this exchange become events with the live ids.

Fill in:

- ``read_tardis(row: TardisRow) -> VenueLiquidation`` for each Tardis.dev exchange id whose
  ``amount`` unit is known without an instrument list: the market, sizes and id from the
  normalizer's own functions, so a recorded and a live copy of one event get the same id
  where the row allows it (else ``_rows.tardis_event_id``); ``_rows.tardis_liquidation``
  builds the event from the row;
- a ``LiveIdMatch`` if the live id carries a number the row gives back only by value or not
  at all (a price the frame padded to its tick: ``venues/bybit/history.py``), so the importer
  finds the live copy among the stored ids sharing the part the row does rebuild;
- a ``RecorderFormat`` for a recorder of our own, if there is one;
- ``HISTORY = History(tardis={"<tardis id>": read_tardis}, recorders=(...),
  live_id_matches=(...))``.

``history_io.py`` reads the files and calls these. Otherwise delete this file and set
``history=Absent("why")``. Example: ``venues/binance/history.py``.
"""
