"""Gap repair: the exchange's public REST history of liquidations in a time window.

After a reconnect, ``ingest/repair.py`` asks it for the window the connection missed. Fill in
(cite the exchange's docs for the endpoint, its parameters and how far back it reaches):

- ``request(instrument, start_ms, end_ms) -> str``: the path and query of one page, oldest
  first (or newest first with ``newest_first=True``: then ``end_ms`` moves back page by page);
- ``parse(body: bytes, instrument, catalog) -> RepairPage``: the page's events with the ids the live
  normalizer gives (reuse its functions, so a repaired copy of an event seen live
  deduplicates), sized with the catalog as the live ones are, whether the window holds more
  and the time of the page's last row (where the next page starts); a body it cannot read
  raises ``FrameError``;
- ``instruments(catalog) -> list[str]``: the instruments the live connection subscribes to;
- ``SOURCE = RepairSource(EXCHANGE, base, request, parse, instruments, reach_ms=...)``.

Otherwise delete this file and set ``repair=Absent("why")`` (no public history, or only the
orders resting now). Examples: ``venues/deribit/repair.py`` (oldest first),
``venues/okx/repair.py`` (newest first).
"""
