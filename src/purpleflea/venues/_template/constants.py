"""Constants: the exchange id(s), display name, coverage class, price kind, simulator listing.

Fill in:

- ``EXCHANGE: Final = "<id>"``: the id events carry (``<name>`` or ``<name>_<product>``; one
  per product line that reports separately, as Binance's ``USDM`` and ``COINM``);
- ``DISPLAY_NAME: Final = "<Name>"``;
- ``COVERAGE: Coverage = "complete" | "snapshot" | "sampled"`` (shared/SPEC.md, event schema):
  complete if the feed carries every liquidation, snapshot if it is throttled or partial,
  sampled if it only covers accounts we watch. Cite the line of shared/EXCHANGES.md that says
  so in a comment above it;
- ``PRICE: PriceKind = "fill" | "bankruptcy" | "order" | "liquidation"``: what the feed's
  price is (shared/EXCHANGES.md trap 5; :data:`purpleflea.venues.venue.PriceKind`). Cite the
  exchange's own field description in a comment above it: ``fill`` only where it says the
  liquidation traded at that price;
- ``SIM = SimListing(...)`` if the market simulator should list the exchange (its share of
  liquidations, how many markets it lists, its perpetual's symbol for a coin).

Example: ``venues/okx/constants.py``.
"""
