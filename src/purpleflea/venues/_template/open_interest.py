"""Open interest and mark prices: the heatmap's input, from the exchange's public REST.

Fill in:

- ``parse(body: bytes, instruments: Catalog) -> list[Reading]``: per instrument its mark
  price and ONE side's open interest in coins (convert contracts with the catalog), with
  ``venues/_open_interest.py``'s helpers; a body it cannot read raises ``PollError``;
- ``SOURCES = (PollSource(EXCHANGE, urls, parse), ...)``: several URLs' ``{"data": [..]}``
  bodies are merged; with no bulk endpoint, ``per_symbol=PerSymbol(...)`` reads open interest
  one symbol per request; an endpoint answering one part of the venue per request (a list
  of parts, then each part) is ``per_scope=PerScope(...)`` (``venues/hyperliquid``'s perp
  dexes); ``error=`` the catalog's ``error_answer`` where errors come inside HTTP 200
  bodies (each body is checked before bodies are merged). ``ingest/pollers.py`` polls them.

Otherwise delete this file and set ``open_interest=Absent("why")``. Example:
``venues/okx/open_interest.py``.
"""
