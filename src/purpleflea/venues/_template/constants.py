"""Constants: the exchange id(s), display name, coverage class and simulator listing.

Fill in:

- ``EXCHANGE: Final = "<id>"``: the id events carry (``<name>`` or ``<name>_<product>``; one
  per product line that reports separately, as Binance's ``USDM`` and ``COINM``);
- ``DISPLAY_NAME: Final = "<Name>"``;
- ``COVERAGE: Coverage = "complete" | "snapshot" | "sampled"`` (shared/SPEC.md, event schema):
  complete if the feed carries every liquidation, snapshot if it is throttled or partial,
  sampled if it only covers accounts we watch. Cite the line of shared/EXCHANGES.md that says
  so in a comment above it;
- ``SIM = SimListing(...)`` if the market simulator should list the exchange (its share of
  liquidations, how many markets it lists, its perpetual's symbol for a coin).

Example: ``venues/okx/constants.py``.
"""
