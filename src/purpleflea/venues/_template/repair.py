"""Gap repair: the exchange's public REST history of liquidations in a time window.

After a reconnect, ``ingest/repair.py`` asks it for the window the connection missed. Fill in
(cite the exchange's docs for the endpoint, its parameters and how far back it reaches):

- ``request(instrument, start_ms, end_ms) -> str``: the path and query of one page, oldest
  first;
- ``parse(body: bytes) -> RepairPage``: the page's events with the ids the live normalizer
  gives (reuse its functions, so a repaired copy of an event seen live deduplicates) and
  whether the window holds more; a body it cannot read raises ``FrameError``;
- ``instruments(catalog) -> list[str]``: the instruments the live connection subscribes to;
- ``SOURCE = RepairSource(EXCHANGE, base, request, parse, instruments, reach_ms=...)``.

Otherwise delete this file and set ``repair=Absent("why")`` (no public history, or only the
orders resting now). Example: ``venues/deribit/repair.py``.
"""
