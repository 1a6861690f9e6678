"""Instrument catalog: the exchange's contract list, for contract sizes and subscriptions.

Needed when sizes are in contracts, or when the feed subscribes per instrument. Fill in:

- ``parse(body: bytes) -> list[Instrument]`` for the public REST instrument list, with
  ``venues/_catalog.py``'s helpers (``json_body``, ``rows``, ``size``, ``linear``,
  ``inverse``): a body it cannot read raises ``CatalogError``, a row without a usable size is
  skipped;
- ``SOURCES = (CatalogSource(EXCHANGE, url, parse), ...)``: every endpoint; the catalogs are
  fetched, refreshed and cached by ``ingest/catalog.py``. If the exchange answers errors with
  HTTP 200 and the error inside the body (OKX ``code``, Bybit ``retCode``), also
  ``error=error_answer``, ``error_answer(body) -> str | None`` reading it, so an error beside
  an empty list is not a list of nothing (example: ``venues/okx/catalog.py``).

Otherwise delete this file and set ``catalog=Absent("why")``. Example: ``venues/okx/catalog.py``.
"""
