"""Fill in: the venue's public position API imitated on loopback, for a venue with
``positions.py``.

A server speaking the documented requests and websocket subscriptions the position sampler
uses (account positions, marks and open interest, the trade stream naming accounts, per-user
liquidation fills), on ephemeral loopback ports, charging each request the documented weight
against the documented per-IP allowance (HTTP 429 beyond it) and holding the documented cap on
watched users. Subclasses say what is held; the tests' fake is one, ``simulated.py`` another.
Without ``positions.py``, delete this file.

Example: ``venues/hyperliquid/local_server.py``.
"""
