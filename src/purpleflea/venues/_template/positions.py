"""Fill in: every account's positions, for a venue whose public API publishes them.

Define ``SAMPLING``, a :class:`~purpleflea.venues.venue.PositionSampling`: where trades name
their accounts, the request and parser of one account's positions (with the exchange's own
liquidation prices), the request and parser of marks and open interest, and the venue's
documented rate limits (cite them). Most venues do not publish this; then delete this file and
leave ``positions`` out of ``VENUE`` (it defaults to ``Absent``).

Example: ``venues/hyperliquid/positions.py``.
"""
